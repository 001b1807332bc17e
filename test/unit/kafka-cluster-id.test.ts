/**
 * The services script formats Kafka's storage with a fresh cluster id. One random id in 64 starts with "-",
 * which the storage tool's argument parser reads as an option: CI failed once on exactly that.
 */
import { describe, expect, test } from "bun:test";
import { clusterId } from "../../scripts/services/kafka";

describe("Kafka cluster id", () => {
  test("is 22 URL-safe base64 characters and never starts with '-' (10,000 draws)", () => {
    const ids = Array.from({ length: 10_000 }, clusterId);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
