"""What the tests and the benchmarks both use (spoken clips, a local vLLM server), so that neither imports the other."""
