import { describe, expect, it } from "vitest";
import { dedupeHash } from "../src/domain/dedupeHash.js";

describe("dedupeHash", () => {
  it("is what PostgreSQL's md5(provider || ':' || key)::uuid gives, multi-byte text included", () => {
    // Both values from `select md5('sendgrid:abc')::uuid, md5('postmark:Zoë ✓ 🎉')::uuid` on PostgreSQL 15.
    expect(dedupeHash("sendgrid", "abc")).toBe("12809eb8-7100-254c-ade8-6daf2d766063");
    expect(dedupeHash("postmark", "Zoë ✓ 🎉")).toBe("7fd16171-4ae4-f56c-a723-456e7e329a37");
  });

  it("tells providers apart for the same key", () => {
    expect(dedupeHash("sendgrid", "k")).not.toBe(dedupeHash("mailgun", "k"));
  });
});
