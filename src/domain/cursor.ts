import { createHmac, timingSafeEqual } from "node:crypto";
import { HeraldError } from "../errors.js";
import { isUuid } from "./uuid.js";

/** Keyset pagination: the cursor is the (timestamp, id) of the last row, opaque to clients. */
export interface CursorPosition {
  at: string;
  id: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const encodeCursor = (position: CursorPosition): string =>
  Buffer.from(JSON.stringify([position.at, position.id])).toString("base64url");

/**
 * A time as `toISOString` writes it for years 0000–9999: what every stored row's time becomes; or with
 * microseconds, as PostgreSQL keeps them, for a list whose cursor cannot read its row's time back (a
 * conversation's activity moves: see `inbound/conversations.ts`).
 */
const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(\d{3})?Z$/;

const invalidCursor = () =>
  new HeraldError("validation_failed", "cursor is not one this API returned for this list", [
    { path: "/querystring/cursor", message: "invalid cursor" },
  ]);

export function decodeCursor(cursor: string | undefined): CursorPosition | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === "string" &&
      isoTime.test(value[0]) &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === "string" &&
      isUuid(value[1])
    ) {
      return { at: value[0], id: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw invalidCursor();
}

/**
 * Cursors leave the API sealed: the position, then an HMAC over the position and the list it belongs to
 * (`scope`: route, tenant and filter), keyed by the installation's secret. A cursor edited by hand, or used
 * with another route, filter or tenant, is refused; within its list it can only name a place.
 */
export function sealCursor(cursor: string, scope: string, key: Buffer): string {
  return `${cursor}.${cursorMac(cursor, scope, key).toString("base64url")}`;
}

/** The position of a sealed cursor issued for `scope`, or 400 `validation_failed`. */
export function openCursor(sealed: string, scope: string, key: Buffer): string {
  const dot = sealed.lastIndexOf(".");
  const cursor = sealed.slice(0, dot);
  const mac = Buffer.from(sealed.slice(dot + 1), "base64url");
  const expected = cursorMac(cursor, scope, key);
  if (dot < 0 || mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw invalidCursor();
  return cursor;
}

const cursorMac = (cursor: string, scope: string, key: Buffer) =>
  createHmac("sha256", key).update(`${scope}\n${cursor}`).digest().subarray(0, 16);

/** The page of `limit + 1` fetched rows: the first `limit`, and a cursor after the last when there are more. */
export function pageFrom<T>(rows: T[], limit: number, positionOf: (row: T) => CursorPosition): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}
