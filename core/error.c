/*
 * error.c: eddy's error codes, their stable strings, and the mapping from
 * libuv's codes. One list (EDDY_ERRNO_MAP in eddy.h) gives all three.
 */
#include <uv.h>

#include "eddy.h"
#include "runtime.h"

const char *eddy_strerror(int err) {
  switch (err) {
  case EDDY_OK:
    return "ok";
#define EDDY_ERRNO_CASE(name, code, str) \
  case EDDY_E##name:                     \
    return str;
    EDDY_ERRNO_MAP(EDDY_ERRNO_CASE)
#undef EDDY_ERRNO_CASE
  }
  return "unknown error";
}

const char *eddy_version(void) {
  return EDDY_VERSION;
}

int eddy__error_from_uv(int uverr) {
  switch (uverr) {
  case 0:
    return EDDY_OK;
  case UV_ETIMEDOUT:
    return EDDY_ETIMEOUT;
  case UV_ECANCELED:
    return EDDY_ECANCELLED;
  case UV_EOF:
  case UV_ECONNRESET:
  case UV_EPIPE:
  case UV_ENOTCONN:
  case UV_ECONNABORTED:
  case UV_ESHUTDOWN:
  case UV_EBADF:
    return EDDY_ECLOSED;
  case UV_ECONNREFUSED:
    return EDDY_EREFUSED;
  case UV_ENOENT:
  case UV_ESRCH: /* a process that is gone */
    return EDDY_ENOTFOUND;
  case UV_EHOSTUNREACH:
  case UV_ENETUNREACH:
  case UV_ENETDOWN:
  case UV_EHOSTDOWN:
    return EDDY_EUNREACHABLE;
  case UV_EADDRINUSE:
    return EDDY_EADDRINUSE;
  case UV_EACCES:
  case UV_EPERM:
  case UV_EROFS:
    return EDDY_EACCESS;
  case UV_ENOMEM:
  case UV_ENOBUFS:
    return EDDY_ENOMEM;
  case UV_EMSGSIZE:
    return EDDY_ETOOLARGE;
  case UV_EINVAL:
  case UV_EAFNOSUPPORT:
  case UV_EADDRNOTAVAIL:
    return EDDY_EINVAL;
  case UV_EBUSY:
  case UV_EAGAIN:
    return EDDY_EBUSY;
  case UV_EMFILE:
  case UV_ENFILE:
    return EDDY_EMFILE;
  case UV_EISDIR:
    return EDDY_EISDIR;
  case UV_EEXIST:
    return EDDY_EEXIST;
  case UV_ENOTDIR:
    return EDDY_ENOTDIR;
  case UV_ENOTEMPTY:
    return EDDY_ENOTEMPTY;
  case UV_ENOSPC:
    return EDDY_ENOSPACE;
  }
  if (uverr <= UV_EAI_ADDRFAMILY && uverr > UV_EAI_ADDRFAMILY - 100)
    return EDDY_EDNS;
  return EDDY_EIO;
}
