"""Verification of LLM music recommendations ("Verifying LLM-Driven Music Recommendation
Systems", Amazon Music, KDD 2025 LLM4ECommerce workshop): intrinsic embedding tests (eqs.
1-4), playlist verification of a generating model, and engagement (QualityScore)."""
