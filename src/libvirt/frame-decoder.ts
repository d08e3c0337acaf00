import { ProtocolError } from './errors.ts';
import {
  VIR_NET_MESSAGE_HEADER_MAX,
  VIR_NET_MESSAGE_LEN_MAX,
  VIR_NET_MESSAGE_MAX,
} from './protocol/generated/virnet.ts';

const MIN_FRAME = VIR_NET_MESSAGE_LEN_MAX + VIR_NET_MESSAGE_HEADER_MAX;

/**
 * Splits a byte stream into libvirt RPC frames: a 4-byte big-endian length that counts itself,
 * then header and body. A length outside [28, max] is refused before anything is buffered for
 * it, so garbage cannot make the decoder allocate.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrame = VIR_NET_MESSAGE_MAX) {}

  /** Bytes held for a frame not yet complete (never more than the frame limit). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feeds bytes; returns complete frames (without the length word). Throws ProtocolError. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < MIN_FRAME || len > this.maxFrame) {
        throw new ProtocolError(
          `frame length ${len} outside ${MIN_FRAME}..${this.maxFrame}: not a libvirt RPC stream`,
        );
      }
      if (this.buffered < len) break;
      const frame = this.take(len);
      frames.push(frame.subarray(4));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = Buffer.from(joined.subarray(0, n));
    const rest = joined.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}
