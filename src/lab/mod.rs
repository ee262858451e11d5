//! The lab: many "hosts" as network namespaces on one machine, for tests, benchmarks and the demo.
