import { ERROR_CODE_NAMES, ERROR_DOMAIN_NAMES } from './error-codes.ts';
import type { VirNetMessageError } from './protocol/generated/virnet.ts';

/** An error reported by libvirtd for one call, with libvirt's code and domain names. */
export class LibvirtError extends Error {
  override name = 'LibvirtError';
  readonly code: number;
  readonly codeName: string;
  readonly domain: number;
  readonly domainName: string;
  readonly level: number;
  readonly str1: string | null;
  readonly str2: string | null;
  readonly str3: string | null;
  readonly int1: number;
  readonly int2: number;

  constructor(
    e: Pick<VirNetMessageError, 'code' | 'domain' | 'message' | 'level'> & Partial<VirNetMessageError>,
  ) {
    super(e.message ?? `libvirt error ${e.code}`);
    this.code = e.code;
    this.codeName = ERROR_CODE_NAMES[e.code] || `VIR_ERR_${e.code}`;
    this.domain = e.domain;
    this.domainName = ERROR_DOMAIN_NAMES[e.domain] || `VIR_FROM_${e.domain}`;
    this.level = e.level;
    this.str1 = e.str1 ?? null;
    this.str2 = e.str2 ?? null;
    this.str3 = e.str3 ?? null;
    this.int1 = e.int1 ?? 0;
    this.int2 = e.int2 ?? 0;
  }

  /** The object named does not exist (domain, network, pool, volume, ...). */
  isNotFound(): boolean {
    return /^VIR_ERR_NO_(DOMAIN|NETWORK|STORAGE_POOL|STORAGE_VOL|INTERFACE|NODE_DEVICE|SECRET|NWFILTER|DOMAIN_SNAPSHOT|DOMAIN_CHECKPOINT|DOMAIN_BACKUP)$/.test(
      this.codeName,
    );
  }

  /** The request is not valid in the object's current state (e.g. destroy of a stopped domain). */
  isOperationInvalid(): boolean {
    return this.codeName === 'VIR_ERR_OPERATION_INVALID';
  }

  /** A running job was aborted (e.g. abortJob during a migration). */
  isAborted(): boolean {
    return this.codeName === 'VIR_ERR_OPERATION_ABORTED';
  }

  /** The operation is not supported by this hypervisor or host. */
  isUnsupported(): boolean {
    return (
      this.codeName === 'VIR_ERR_NO_SUPPORT' ||
      this.codeName === 'VIR_ERR_OPERATION_UNSUPPORTED' ||
      this.codeName === 'VIR_ERR_ARGUMENT_UNSUPPORTED'
    );
  }
}

/** Base of the errors the connection itself raises (as opposed to libvirtd's answers). */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

/** The connection closed (or was closed) before the call was answered. */
export class ConnectionClosedError extends ConnectionError {
  override name = 'ConnectionClosedError';
}

/** The peer sent nothing for keepalive interval x count: it is presumed dead. */
export class KeepaliveTimeoutError extends ConnectionError {
  override name = 'KeepaliveTimeoutError';
}

/** A call was not answered within its deadline; its late reply, if any, is dropped. */
export class CallTimeoutError extends ConnectionError {
  override name = 'CallTimeoutError';
}

/** The peer sent bytes that are not a valid libvirt RPC message. */
export class ProtocolError extends ConnectionError {
  override name = 'ProtocolError';
}

/** The server asked for an authentication mechanism this client does not implement. */
export class AuthUnsupportedError extends ConnectionError {
  override name = 'AuthUnsupportedError';
}

/** Plain TCP was asked for without the explicit insecure flag. */
export class InsecureTransportError extends ConnectionError {
  override name = 'InsecureTransportError';
}

/** A URI that is not a libvirt URI this client can use. */
export class UriError extends ConnectionError {
  override name = 'UriError';
}
