/**
 * Constants that the .x files use but do not define: rpcgen takes them from libvirt's C headers
 * (via `%#include <libvirt/libvirt.h>` / `internal.h`). Values from libvirt's public headers,
 * which are ABI and never change:
 *   libvirt-common.h: VIR_UUID_BUFLEN (16), enum virTypedParameterType (VIR_TYPED_PARAM_*)
 *   libvirt-host.h:   VIR_SECURITY_MODEL_BUFLEN (256 + 1), VIR_SECURITY_LABEL_BUFLEN (4096 + 1),
 *                     VIR_SECURITY_DOI_BUFLEN (256 + 1)
 */
export const EXTERN_CONSTANTS: Readonly<Record<string, number>> = {
  VIR_UUID_BUFLEN: 16,
  VIR_SECURITY_MODEL_BUFLEN: 257,
  VIR_SECURITY_LABEL_BUFLEN: 4097,
  VIR_SECURITY_DOI_BUFLEN: 257,
  VIR_TYPED_PARAM_INT: 1,
  VIR_TYPED_PARAM_UINT: 2,
  VIR_TYPED_PARAM_LLONG: 3,
  VIR_TYPED_PARAM_ULLONG: 4,
  VIR_TYPED_PARAM_DOUBLE: 5,
  VIR_TYPED_PARAM_BOOLEAN: 6,
  VIR_TYPED_PARAM_STRING: 7,
};
