/**
 * Finds one complete HTTP/1.1 response at the start of a buffer: status,
 * body (Content-Length or chunked), and whether the server will close the
 * connection. Only what a load generator needs; no header objects.
 */

export interface ParsedResponse {
  status: number;
  body: Uint8Array;
  /** Bytes of the buffer this response used. */
  consumed: number;
  /** The server said `Connection: close`. */
  close: boolean;
}

const CR = 13;
const LF = 10;

function headerEnd(buffer: Uint8Array): number {
  for (let i = 3; i < buffer.byteLength; i++) {
    if (buffer[i] === LF && buffer[i - 1] === CR && buffer[i - 2] === LF && buffer[i - 3] === CR) return i + 1;
  }
  return -1;
}

const latin1 = new TextDecoder("latin1");

/** Decodes a chunked body starting at `start`; undefined until the last chunk has arrived. */
function chunked(buffer: Uint8Array, start: number): { body: Uint8Array; end: number } | undefined | "invalid" {
  const parts: Uint8Array[] = [];
  let at = start;
  for (;;) {
    let lineEnd = at;
    while (lineEnd + 1 < buffer.byteLength && !(buffer[lineEnd] === CR && buffer[lineEnd + 1] === LF)) lineEnd++;
    if (lineEnd + 1 >= buffer.byteLength) return undefined;
    const size = Number.parseInt(latin1.decode(buffer.subarray(at, lineEnd)).split(";")[0] ?? "", 16);
    if (Number.isNaN(size)) return "invalid";
    const dataStart = lineEnd + 2;
    if (size === 0) {
      // No trailers expected: the terminating CRLF follows at once.
      if (dataStart + 2 > buffer.byteLength) return undefined;
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      const body = new Uint8Array(total);
      let offset = 0;
      for (const part of parts) {
        body.set(part, offset);
        offset += part.byteLength;
      }
      return { body, end: dataStart + 2 };
    }
    if (dataStart + size + 2 > buffer.byteLength) return undefined;
    parts.push(buffer.subarray(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
}

/** A complete response, undefined when more bytes are needed, "invalid" when it is not HTTP. */
export function parseResponse(buffer: Uint8Array): ParsedResponse | undefined | "invalid" {
  const end = headerEnd(buffer);
  if (end < 0) return buffer.byteLength > 65_536 ? "invalid" : undefined;
  const head = latin1.decode(buffer.subarray(0, end));
  if (!head.startsWith("HTTP/1.")) return "invalid";
  const status = Number(head.slice(9, 12));
  if (!Number.isInteger(status)) return "invalid";
  const lower = head.toLowerCase();
  const close = lower.includes("\r\nconnection: close");
  if (lower.includes("\r\ntransfer-encoding: chunked")) {
    const decoded = chunked(buffer, end);
    if (decoded === undefined || decoded === "invalid") return decoded;
    return { status, body: decoded.body, consumed: decoded.end, close };
  }
  const match = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  const length = match ? Number(match[1]) : 0;
  if (end + length > buffer.byteLength) return undefined;
  return { status, body: buffer.subarray(end, end + length), consumed: end + length, close };
}
