import Foundation

// Floor: Foundation linked (and touched once), no server; just sleeps.
let pid = ProcessInfo.processInfo.processIdentifier
FileHandle.standardError.write(Data("idle pid \(pid)\n".utf8))
while true { Thread.sleep(forTimeInterval: 3600) }
