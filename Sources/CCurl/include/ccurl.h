#ifndef WALSHIP_CCURL_H
#define WALSHIP_CCURL_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic and do not import into Swift. Each wrapper
// below passes exactly one argument type, so the call through `...` is well defined.

typedef size_t (*walship_curl_data_callback)(char *buffer, size_t size, size_t count, void *user);
typedef int (*walship_curl_seek_callback)(void *user, curl_off_t offset, int origin);
typedef int (*walship_curl_xferinfo_callback)(void *user, curl_off_t dltotal, curl_off_t dlnow,
                                              curl_off_t ultotal, curl_off_t ulnow);

CURLcode walship_curl_global_init(void);

CURLcode walship_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode walship_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode walship_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode walship_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode walship_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode walship_curl_setopt_data_callback(CURL *handle, CURLoption option,
                                           walship_curl_data_callback callback);
CURLcode walship_curl_setopt_seek_callback(CURL *handle, walship_curl_seek_callback callback);
CURLcode walship_curl_setopt_xferinfo_callback(CURL *handle,
                                               walship_curl_xferinfo_callback callback);

CURLcode walship_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode walship_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode walship_curl_getinfo_double(CURL *handle, CURLINFO info, double *value);

// Values of macros that do not import.
long walship_curl_readfunc_abort(void);
int walship_curl_seekfunc_ok(void);
int walship_curl_seekfunc_fail(void);

#endif
