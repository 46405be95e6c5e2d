import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from "libphonenumber-js";
import type { Channel } from "./vocabularies.js";

/**
 * Addresses as Herald stores and compares them, whoever gives them (the messages API, suppressions, a
 * provider's events): emails trimmed and lower-cased, phone numbers in E.164. The one place this is decided.
 */

/** An email address trimmed and lower-cased. */
export const normalizeEmail = (address: string) => address.trim().toLowerCase();

/**
 * The region (ISO 3166-1 alpha-2, such as `US` or `GB`) a phone number written in national format
 * (`(415) 555-0100`, `020 7946 0018`) is read in. Without one, only international numbers (`+…`) are read.
 */
export type PhoneRegion = CountryCode;

/** Whether `code` is a region libphonenumber-js knows (for validating a setting such as a default region). */
export const isPhoneRegion = (code: string): code is PhoneRegion => isSupportedCountry(code);

/**
 * The installation's region for national numbers (`HERALD_DEFAULT_PHONE_REGION`), set once at start-up by the
 * process (`herald serve`, `herald worker`); undefined: only international numbers are read. Every reading of
 * an address without a region of its own uses it, so the API, the intake and the processors agree.
 */
let defaultRegion: PhoneRegion | undefined;

export function setDefaultPhoneRegion(region: PhoneRegion | undefined) {
  defaultRegion = region;
}

/**
 * A phone number as libphonenumber-js reads it, when it is a possible number without extension: an
 * international one, or a national one of `region`.
 */
function phoneOf(address: string, region?: PhoneRegion) {
  const phone = parsePhoneNumberFromString(address, region);
  return phone?.isPossible() && !phone.ext ? phone : undefined;
}

/**
 * A phone number in E.164 (`+14155550100`); a national one is read in `region`, when given. One that cannot
 * be read (no `+` and no region, no such country code, too short or long) keeps its digits and `+` only, so
 * it still compares equal to itself.
 */
export const normalizePhone = (address: string, region: PhoneRegion | undefined = defaultRegion) =>
  phoneOf(address, region)?.number ?? address.replace(/[\s().-]/g, "");

/** An address of a channel as stored and compared (`region`: see `normalizePhone`). */
export const normalizeAddress = (
  channel: Channel,
  address: string,
  region: PhoneRegion | undefined = defaultRegion,
) => (channel === "email" ? normalizeEmail(address) : normalizePhone(address, region));

const emailShape = /^[^\s@<>]+@[^\s@<>]+$/;

/**
 * Why an address cannot be one of its channel's (null: it can). A phone number must be international, or
 * national in `region` when one is given — a national number with no region has no country to normalize it
 * with, and stored as sent it would never match the provider's `+…` in events — and an email a bare address
 * (a display name would never match either).
 */
export function addressProblem(
  channel: Channel,
  address: string,
  region: PhoneRegion | undefined = defaultRegion,
): string | null {
  if (channel === "sms") {
    if (phoneOf(address, region)) return null;
    return region
      ? `is not a phone number (international, such as +14155550100, or national in ${region})`
      : "is not an E.164 phone number (such as +14155550100)";
  }
  return emailShape.test(normalizeEmail(address))
    ? null
    : "is not an email address (such as ada@example.com)";
}
