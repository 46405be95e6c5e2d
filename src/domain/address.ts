import { parsePhoneNumberFromString } from "libphonenumber-js";
import type { Channel } from "./vocabularies.js";

/**
 * Addresses as Herald stores and compares them, whoever gives them (the messages API, suppressions, a
 * provider's events): emails trimmed and lower-cased, phone numbers in E.164. The one place this is decided.
 */

/** An email address trimmed and lower-cased. */
export const normalizeEmail = (address: string) => address.trim().toLowerCase();

/** A phone number as libphonenumber-js reads it, when it is a possible international number without extension. */
function phoneOf(address: string) {
  const phone = parsePhoneNumberFromString(address);
  return phone?.isPossible() && !phone.ext ? phone : undefined;
}

/**
 * A phone number in E.164 (`+14155550100`). One that cannot be read as international (no `+`, no such
 * country code, too short or long) keeps its digits and `+` only, so it still compares equal to itself.
 */
export const normalizePhone = (address: string) =>
  phoneOf(address)?.number ?? address.replace(/[\s().-]/g, "");

/** An address of a channel as stored and compared. */
export const normalizeAddress = (channel: Channel, address: string) =>
  channel === "email" ? normalizeEmail(address) : normalizePhone(address);

const emailShape = /^[^\s@<>]+@[^\s@<>]+$/;

/**
 * Why an address cannot be one of its channel's (null: it can). A phone number must be international — a
 * national number has no country to normalize it with, and stored as sent it would never match the
 * provider's `+…` in events — and an email a bare address (a display name would never match either).
 */
export function addressProblem(channel: Channel, address: string): string | null {
  if (channel === "sms")
    return phoneOf(address) ? null : "is not an E.164 phone number (such as +14155550100)";
  return emailShape.test(normalizeEmail(address))
    ? null
    : "is not an email address (such as ada@example.com)";
}
