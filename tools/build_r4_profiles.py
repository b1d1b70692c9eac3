"""Build the compact R4 definition files under fhir_profiles/r4/ from the official R4 package.

The server needs, at run time, the official R4 SearchParameters, the Patient
CompartmentDefinition and, per resource type, the element types, cardinalities and required
code bindings. The official files (../shared/data/fhir-r4/, HL7 FHIR R4 4.0.1, CC0) are 50 MB;
this script keeps only what the server reads, so the files shipped with the project are derived
and reproducible:

    python tools/build_r4_profiles.py [--source ../shared/data/fhir-r4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_SP = (
    "resourceType", "id", "url", "version", "name", "code", "base", "type", "expression",
    "target", "multipleOr", "multipleAnd", "comparator", "modifier", "chain", "component",
    "description",
)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_systems(valuesets: dict) -> dict[str, list[str]]:
    def walk(concepts: list[dict], out: list[str]) -> None:
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []), out)

    out: dict[str, list[str]] = {}
    for e in valuesets["entry"]:
        r = e["resource"]
        if r["resourceType"] == "CodeSystem" and r.get("concept"):
            codes: list[str] = []
            walk(r["concept"], codes)
            out[r["url"]] = codes
    return out


def expand(url: str, vsets: dict[str, dict], systems: dict[str, list[str]]) -> list[str] | None:
    """Codes of a ValueSet if it is enumerable from the package, else None (not checked)."""
    vs = vsets.get(url.split("|")[0])
    if vs is None or "compose" not in vs:
        return None
    codes: list[str] = []
    for inc in vs["compose"].get("include", []):
        if inc.get("filter") or inc.get("valueSet"):
            return None
        if "concept" in inc:
            codes += [c["code"] for c in inc["concept"]]
        elif inc.get("system") in systems:
            codes += systems[inc["system"]]
        else:
            return None
    if vs["compose"].get("exclude"):
        return None
    return sorted(set(codes))


def elements(sds: list[dict], vsets: dict, systems: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for sd in sds:
        name = sd["type"] if sd.get("derivation") == "specialization" else None
        if not name or "snapshot" not in sd:
            continue
        els: dict[str, dict] = {}
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if "." not in path:
                continue
            rel = path.split(".", 1)[1]
            info: dict = {"min": el.get("min", 0), "max": el.get("max", "*")}
            types = []
            for t in el.get("type", []):
                code = t["code"]
                if code.startswith("http://hl7.org/fhirpath/System."):
                    for ext in t.get("extension", []):
                        if ext["url"].endswith("structuredefinition-fhir-type"):
                            code = ext["valueUrl"]
                types.append(code)
            if types:
                info["types"] = types
            if el.get("isSummary"):
                info["summary"] = True
            if "contentReference" in el:
                info["ref"] = el["contentReference"].split(".", 1)[1]
            b = el.get("binding")
            if b and b.get("strength") == "required" and types == ["code"] and b.get("valueSet"):
                codes = expand(b["valueSet"], vsets, systems)
                if codes:
                    info["required"] = codes
            els[rel] = info
        out[name] = {"kind": sd["kind"], "abstract": sd.get("abstract", False), "elements": els}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "fhir-r4")
    args = ap.parse_args()
    src: Path = args.source
    dst = ROOT / "fhir_profiles" / "r4"
    dst.mkdir(parents=True, exist_ok=True)

    sp = load(src / "search-parameters.json")
    entries = [
        {"resource": {k: e["resource"][k] for k in KEEP_SP if k in e["resource"]}}
        for e in sp["entry"]
    ]
    bundle = {"resourceType": "Bundle", "id": "r4-search-parameters", "type": "collection",
              "entry": entries}
    (dst / "search-parameters.json").write_text(json.dumps(bundle, indent=0) + "\n")

    cd = load(src / "compartmentdefinition-patient.json")
    (dst / "compartmentdefinition-patient.json").write_text(json.dumps(cd, indent=1) + "\n")

    vs_bundle = load(src / "valuesets.json")
    vsets = {e["resource"]["url"]: e["resource"] for e in vs_bundle["entry"]
             if e["resource"]["resourceType"] == "ValueSet"}
    systems = code_systems(vs_bundle)
    sds = [e["resource"] for e in load(src / "profiles-resources.json")["entry"]
           if e["resource"]["resourceType"] == "StructureDefinition"]
    sds += [e["resource"] for e in load(src / "profiles-types.json")["entry"]
            if e["resource"]["resourceType"] == "StructureDefinition"]
    defs = elements(sds, vsets, systems)
    # The package also carries Medplum's own types and an R4B backport (SubscriptionStatus):
    # keep the resource types the official R4 JSON Schema knows, and every data type.
    schema_types = set(load(src / "fhir.schema.json")["discriminator"]["mapping"])
    defs = {k: v for k, v in defs.items() if v["kind"] != "resource" or k in schema_types
            or v["abstract"]}
    (dst / "elements.json").write_text(json.dumps(defs, separators=(",", ":")) + "\n")
    print(f"wrote {len(entries)} search parameters, {len(defs)} type definitions to {dst}")


if __name__ == "__main__":
    main()
