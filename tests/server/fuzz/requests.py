"""The requests the fuzzers send: writes with broken bodies, reads with broken queries."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import strategies as st

from tests.server.fuzz.bodies import bodies, broken, dumps, json_values, mangled_text
from tests.server.fuzz.queries import query_pairs
from tests.server.fuzz.resources import (
    SEED_IDS,
    TYPES,
    Request,
    bundle_template,
    templates,
    words,
)

content_types = st.sampled_from(
    ["application/fhir+json"] * 6
    + words("application/json application/fhir+json;charset=utf-8 text/plain application/xml ''")
)
json_patches = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(words("add remove replace move copy test x")),
            "path": st.sampled_from(
                words(
                    "/gender /id /resourceType /name/0/family /name/- /meta/versionId '' / ~1 /a/b"
                )
            ),
        },
        optional={"value": json_values, "from": st.sampled_from(["/name", "/x"])},
    ),
    max_size=3,
)


@st.composite
def write_requests(draw: st.DrawFn) -> Request:
    """Creates, updates, conditional updates, patches and Bundles with broken bodies."""
    kind = draw(
        st.sampled_from(
            ["create", "update", "conditional", "bundle", "bundle", "patch", "search-post"]
        )
    )
    headers = {"content-type": draw(content_types)}
    if draw(st.integers(0, 4)) == 0:
        headers[draw(st.sampled_from(["if-match", "if-none-exist", "prefer"]))] = draw(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
        )
    rt = draw(st.sampled_from(TYPES))
    if kind == "bundle":
        body = draw(
            st.one_of(
                broken(bundle_template()).map(dumps),
                mangled_text(bundle_template()),
                bodies(templates()),
            )
        )
        return Request("POST", "/", body, headers)
    if kind == "patch":
        ops = draw(json_patches | json_values)
        headers["content-type"] = draw(
            st.sampled_from(["application/json-patch+json"] * 4 + ["application/fhir+json"])
        )
        seed = draw(st.sampled_from(list(SEED_IDS.items())))
        return Request("PATCH", f"/{seed[0]}/{seed[1]}", dumps(ops), headers)
    if kind == "search-post":
        headers["content-type"] = "application/x-www-form-urlencoded"
        return Request("POST", f"/{rt}/_search", draw(query_pairs(rt)).encode(), headers)
    template = draw(st.sampled_from(templates()))
    if draw(st.integers(0, 4)):  # mostly the type the body claims to be
        rt = template["resourceType"]
    body = draw(bodies([template]))
    if kind == "create":
        return Request("POST", f"/{rt}", body, headers)
    if kind == "conditional":
        return Request("PUT", f"/{rt}?{draw(query_pairs(rt))}", body, headers)
    rid = draw(st.sampled_from([*SEED_IDS.values(), "x" * 65, "a.b", "-", "%20", "new-1"]))
    return Request("PUT", f"/{rt}/{quote(rid, safe='')}", body, headers)


TAILS = words(
    "'' /_history/1 /_history/x /_history/99999999999999 /_history/-1 ?_summary=true "
    "?_elements=id,x ?_summary=nope /$nope /_history/1/x /_history/¹ /_history/٣ /_history?_count=0"
)
READ_HEADERS = [
    {},
    {"if-none-match": 'W/"1"'},
    {"if-modified-since": "yesterday"},
    {"accept": "application/xml"},
]


@st.composite
def read_requests(draw: st.DrawFn) -> Request:
    """Searches, reads, history and $everything with broken parameters."""
    rt = draw(st.sampled_from(TYPES + ["Nope", "patient", "_history", "metadata"]))
    kind = draw(st.sampled_from(["search"] * 6 + ["history", "read", "everything", "raw"]))
    if kind == "search":
        return Request("GET", f"/{rt}?{draw(query_pairs(rt))}")
    if kind == "history":
        where = draw(st.sampled_from(["/_history", f"/{rt}/_history", "/Patient/fuzz-p1/_history"]))
        return Request("GET", f"{where}?{draw(query_pairs('Resource'))}")
    if kind == "read":
        rid = draw(
            st.one_of(
                st.sampled_from([*SEED_IDS.values(), "x" * 200]), st.text(min_size=1, max_size=20)
            )
        )
        tail = draw(st.sampled_from(TAILS))
        headers = draw(st.sampled_from(READ_HEADERS))
        return Request("GET", f"/{rt}/{quote(rid, safe='')}{tail}", headers=headers)
    if kind == "everything":
        return Request("GET", f"/Patient/fuzz-p1/$everything?{draw(query_pairs('Resource'))}")
    raw = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
    return Request("GET", f"/{rt}?{raw}")
