import CCurl
import Foundation
import WalshipCore

#if canImport(Glibc)
    import Glibc
#endif

/// One worker thread's easy handle. `curl_easy_reset` between requests clears the options but
/// keeps the connection cache, so consecutive requests to one endpoint reuse a connection.
final class CurlWorker {
    let handle: UnsafeMutableRawPointer
    let options: CurlTransport.Options
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init(options: CurlTransport.Options) {
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.handle = handle
        self.options = options
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    func perform(_ job: Job) {
        let context = CurlRequestContext(sink: job.sink, body: job.request.body, cancelled: job.cancelled)
        do {
            let response = try run(job.request, context: context)
            job.continuation.resume(returning: response)
        } catch {
            context.discardFileOutput()
            job.continuation.resume(throwing: error)
        }
    }

    private func run(_ request: HTTPRequest, context: CurlRequestContext) throws -> HTTPResponse {
        curl_easy_reset(handle)
        errorBuffer[0] = 0
        try context.open()
        defer { context.close() }
        let user = Unmanaged.passUnretained(context).toOpaque()

        try set(CURLOPT_URL, request.url)
        try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "set error buffer")
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        try set(CURLOPT_CONNECTTIMEOUT, options.connectTimeoutSeconds)
        try set(CURLOPT_LOW_SPEED_LIMIT, 1)
        try set(CURLOPT_LOW_SPEED_TIME, options.lowSpeedTimeSeconds)
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        try set(CURLOPT_FOLLOWLOCATION, 0)
        if let caBundle = options.caBundle { try set(CURLOPT_CAINFO, caBundle) }

        try checkCurl(walship_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, curlWriteCallback), "write fn")
        try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, user), "write data")
        try checkCurl(
            walship_curl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, curlHeaderCallback), "header fn")
        try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, user), "header data")
        try set(CURLOPT_NOPROGRESS, 0)
        try checkCurl(walship_curl_setopt_xferinfo_callback(handle, curlProgressCallback), "progress fn")
        try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, user), "progress data")

        let method = request.method.uppercased()
        let hasBody: Bool
        switch request.body {
        case .none: hasBody = method == "PUT" || method == "POST"
        default: hasBody = true
        }
        if method == "HEAD" {
            try set(CURLOPT_NOBODY, 1)
        } else if hasBody {
            // UPLOAD streams the body through the read callback with a Content-Length (never
            // chunked: INFILESIZE is always set); CUSTOMREQUEST turns the PUT into a POST.
            try set(CURLOPT_UPLOAD, 1)
            try checkCurl(
                walship_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.length)), "size")
            try checkCurl(walship_curl_setopt_data_callback(handle, CURLOPT_READFUNCTION, curlReadCallback), "read fn")
            try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_READDATA, user), "read data")
            try checkCurl(walship_curl_setopt_seek_callback(handle, curlSeekCallback), "seek fn")
            try checkCurl(walship_curl_setopt_pointer(handle, CURLOPT_SEEKDATA, user), "seek data")
            if method != "PUT" { try set(CURLOPT_CUSTOMREQUEST, method) }
        } else if method != "GET" {
            try set(CURLOPT_CUSTOMREQUEST, method)
        }

        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        if hasBody && request.body.length < options.expectContinueThreshold {
            headerList = curl_slist_append(headerList, "Expect:")
        }
        // curl would add "Accept: */*"; S3 does not need it.
        headerList = curl_slist_append(headerList, "Accept:")
        try checkCurl(walship_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), "headers")

        let code = curl_easy_perform(handle)
        if let sinkError = context.failure { throw sinkError }
        if code != CURLE_OK {
            if context.cancelled.isSet {
                throw WalshipError(.cancelled, "object store request cancelled")
            }
            let detail = String(cString: errorBuffer)
            let error = CurlError(code, detail: detail)
            throw WalshipErrorFactory.curl(error, transient: error.isTransient)
        }
        var status = 0
        _ = walship_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        try context.finishFileOutput(status: status)
        return HTTPResponse(
            status: status, headers: context.headers, body: context.memory, bodyBytes: context.received)
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        try checkCurl(walship_curl_setopt_long(handle, option, value), "set curl option \(option.rawValue)")
    }

    private func set(_ option: CURLoption, _ value: String) throws {
        try checkCurl(walship_curl_setopt_string(handle, option, value), "set curl option \(option.rawValue)")
    }
}

// MARK: C callbacks (no captures: they find their context through the user pointer)

private let curlWriteCallback: walship_curl_data_callback = { buffer, size, count, user in
    let context = Unmanaged<CurlRequestContext>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    return context.receive(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : 0
}

private let curlHeaderCallback: walship_curl_data_callback = { buffer, size, count, user in
    let context = Unmanaged<CurlRequestContext>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    context.header(UnsafeRawBufferPointer(start: buffer, count: length))
    return length
}

private let curlReadCallback: walship_curl_data_callback = { buffer, size, count, user in
    let context = Unmanaged<CurlRequestContext>.fromOpaque(user!).takeUnretainedValue()
    let result = context.provide(UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
    return result < 0 ? Int(walship_curl_readfunc_abort()) : result
}

private let curlSeekCallback: walship_curl_seek_callback = { user, offset, origin in
    let context = Unmanaged<CurlRequestContext>.fromOpaque(user!).takeUnretainedValue()
    guard origin == SEEK_SET, context.seek(to: Int64(offset)) else { return walship_curl_seekfunc_fail() }
    return walship_curl_seekfunc_ok()
}

private let curlProgressCallback: walship_curl_xferinfo_callback = { user, _, _, _, _ in
    let context = Unmanaged<CurlRequestContext>.fromOpaque(user!).takeUnretainedValue()
    return context.cancelled.isSet ? 1 : 0
}
