import { describe, expect, test } from "bun:test";
import { parseResponse } from "../../bench/http/response-parser";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("response parser", () => {
  test("a Content-Length response, and the bytes of the next one left over", () => {
    const parsed = parseResponse(bytes("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1"));
    if (!parsed || parsed === "invalid") throw new Error("not parsed");
    expect(parsed.status).toBe(202);
    expect(text(parsed.body)).toBe("{}");
    expect(parsed.consumed).toBe(bytes("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}").byteLength);
  });

  test("an incomplete response asks for more bytes", () => {
    expect(parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Len"))).toBeUndefined();
    expect(parseResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"))).toBeUndefined();
  });

  test("a chunked body is reassembled; Connection: close is reported", () => {
    const parsed = parseResponse(
      bytes(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      ),
    );
    if (!parsed || parsed === "invalid") throw new Error("not parsed");
    expect(text(parsed.body)).toBe("abcde");
    expect(parsed.close).toBe(true);
  });

  test("something that is not HTTP is invalid", () => {
    expect(parseResponse(bytes("SSH-2.0-OpenSSH\r\n\r\n"))).toBe("invalid");
  });
});
