import type { VerificationRefusal, VerificationSettings } from "./types.js";

/**
 * The check every provider's verification settings start with: each of its `fields` is there and not empty.
 * Undefined when they all are.
 */
export function missingFields(
  provider: string,
  fields: readonly string[],
  settings: VerificationSettings,
): VerificationRefusal | undefined {
  const missing = fields.filter((field) => !settings[field]);
  return missing.length === 0
    ? undefined
    : {
        detail: `${provider} verification needs ${fields.join(", ")}`,
        errors: missing.map((field) => ({ field, message: "is required" })),
      };
}
