"""Risk scoring and the MITRE ATLAS / OWASP ML Top 10 catalogue."""

from mlarmor.risk.catalogue import ATLAS, OWASP_ML, atlas_url, owasp_url

__all__ = ["ATLAS", "OWASP_ML", "atlas_url", "owasp_url"]
