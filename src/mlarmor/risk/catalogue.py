"""MITRE ATLAS techniques and OWASP Machine Learning Security Top 10 entries that findings cite."""

from __future__ import annotations

from typing import Final

__all__ = ["ATLAS", "OWASP_ML", "atlas_url", "owasp_url"]

ATLAS: Final[dict[str, str]] = {
    "AML.T0010.003": "AI Supply Chain Compromise: Model",
    "AML.T0011.000": "User Execution: Unsafe AI Artifacts",
    "AML.T0012": "Valid Accounts",
    "AML.T0015": "Evade AI Model",
    "AML.T0018.000": "Manipulate AI Model: Poison AI Model",
    "AML.T0018.002": "Manipulate AI Model: Embed Malware",
    "AML.T0020": "Poison Training Data",
    "AML.T0024.000": "Exfiltration via AI Inference API: Infer Training Data Membership",
    "AML.T0024.001": "Exfiltration via AI Inference API: Invert AI Model",
    "AML.T0024.002": "Exfiltration via AI Inference API: Extract AI Model",
    "AML.T0040": "AI Model Inference API Access",
    "AML.T0043.000": "Craft Adversarial Data: White-Box Optimization",
    "AML.T0043.001": "Craft Adversarial Data: Black-Box Optimization",
    "AML.T0043.002": "Craft Adversarial Data: Black-Box Transfer",
    "AML.T0043.004": "Craft Adversarial Data: Insert Backdoor Trigger",
}

OWASP_ML: Final[dict[str, str]] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}


def atlas_url(technique: str) -> str:
    """Link to a technique's page on atlas.mitre.org (sub-techniques link to their parent page)."""
    return f"https://atlas.mitre.org/techniques/{technique}"


def owasp_url(entry: str) -> str:
    """Link to an OWASP ML Top 10 entry."""
    slugs = {
        "ML01": "ML01_2023-Input_Manipulation_Attack",
        "ML02": "ML02_2023-Data_Poisoning_Attack",
        "ML03": "ML03_2023-Model_Inversion_Attack",
        "ML04": "ML04_2023-Membership_Inference_Attack",
        "ML05": "ML05_2023-Model_Theft",
        "ML06": "ML06_2023-AI_Supply_Chain_Attacks",
        "ML07": "ML07_2023-Transfer_Learning_Attack",
        "ML08": "ML08_2023-Model_Skewing",
        "ML09": "ML09_2023-Output_Integrity_Attack",
        "ML10": "ML10_2023-Model_Poisoning",
    }
    return f"https://owasp.org/www-project-machine-learning-security-top-10/docs/{slugs.get(entry, '')}"
