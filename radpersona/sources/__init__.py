"""Readers of the cohort sources that are not in the MRNet layout.

- :mod:`radpersona.sources.kneemri` — the Rijeka KneeMRI dataset (``metadata.csv`` + pickled
  ``.pck`` volumes, sagittal only), read with a restricted unpickler;
- :mod:`radpersona.sources.manifest` — a CSV manifest of NIfTI files or DICOM series folders,
  read with SimpleITK.

The MRNet layout (and the synthetic cohort, which is written in it) is read by
:mod:`radpersona.ingest` itself.
"""
