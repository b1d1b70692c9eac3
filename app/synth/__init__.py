"""Deterministic generator of a synthetic Leuven-like primary-care region, as FHIR R4 JSON.

About 102,000 inhabitants in Leuven's five postal codes (3000 Leuven, 3001 Heverlee, 3010
Kessel-Lo, 3012 Wilsele, 3018 Wijgmaal), served by 8 neighbourhood teams (Zorgzaam Leuven,
Vaes et al., ICIC 2023) whose mapping to sectors and streets is **synthetic**. Everything is
generated from a seed and a reference date:

- people: a Leuven-like age/sex pyramid (students; 65+ 17%, 85+ 3%), Flemish, French-speaking
  and international names and languages, well-formed SSINs with sequence numbers 900-998;
- providers: GPs (1 per 1,500), pharmacies, home nurses, physiotherapists, dietitians, social
  workers, diabetes educators with synthetic NIHDI numbers; team CareTeams and Groups;
- health: chronic conditions with prevalences by age and sex from Belgian sources (IMA-AIM
  diabetes 2022, BELHES 2018, Health Interview Survey 2018, Belgian heart failure pathway,
  Europace 2016 AF screening, Vlaams Expertisecentrum Dementie, PHARMO for CKD; see
  ``fhir_profiles/synth/clinical.json`` for every figure and its source), co-occurring through
  shared latent factors, coded as GPs (ICPC-2 + ICD-10) and hospitals (SNOMED CT) send them;
- observations, medication lines and dispensations (ATC, synthetic CNK), encounters, care
  pathways (CareTeam, CarePlan, Goal) and medication reviews, with deliberate care gaps.

Use ``generate_region(RegionConfig(...))``; ``bundles`` and ``output`` turn a region into
transaction Bundles, NDJSON files or POSTs to a FHIR server.
"""

from app.synth.region import Region, RegionConfig, generate_region

__all__ = ["Region", "RegionConfig", "generate_region"]
