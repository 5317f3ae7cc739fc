"""Report writers: terminal (Rich), JSON (the versioned schema) and SARIF 2.1.0."""

from mlarmor.report.json import to_json
from mlarmor.report.sarif import to_sarif
from mlarmor.report.terminal import print_report

__all__ = ["print_report", "to_json", "to_sarif"]
