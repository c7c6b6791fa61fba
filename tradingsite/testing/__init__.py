"""Test helpers shared by every app: the generic API test cases and factories."""
