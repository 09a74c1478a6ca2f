#include "ccurl.h"

CURLcode walship_curl_global_init(void) { return curl_global_init(CURL_GLOBAL_ALL); }

CURLcode walship_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode walship_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode walship_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode walship_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode walship_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode walship_curl_setopt_data_callback(CURL *handle, CURLoption option,
                                           walship_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

CURLcode walship_curl_setopt_seek_callback(CURL *handle, walship_curl_seek_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, callback);
}

CURLcode walship_curl_setopt_xferinfo_callback(CURL *handle,
                                               walship_curl_xferinfo_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

CURLcode walship_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode walship_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode walship_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

long walship_curl_readfunc_abort(void) { return CURL_READFUNC_ABORT; }
int walship_curl_seekfunc_ok(void) { return CURL_SEEKFUNC_OK; }
int walship_curl_seekfunc_fail(void) { return CURL_SEEKFUNC_FAIL; }
