"""DICOM X-Ray Radiation Dose SR (PS3.16 TID 10001) out and in: coded concepts and units
(``codes``), content-item builders (``content``), writing a procedure as an RDSR (``export``),
reading and refusing files (``read``) and importing vendors' reports into the log (``ingest``).

May import ``fluoro.doselog`` and the shared modules.
"""
