"""A synthetic IEMOCAP-layout corpus and tiny random models, for the demo and the tests."""
