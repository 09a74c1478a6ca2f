import Testing

/// Every test in this target starts the `walship` executable (and often writers or servers), so
/// they run one at a time: nested suites inherit `.serialized`.
@Suite("walship command line", .serialized)
struct CLIIntegration {}
