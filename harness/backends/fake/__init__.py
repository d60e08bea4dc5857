"""The instant fake backends (echo, fixed, oracle) for tests and overhead benchmarks."""
