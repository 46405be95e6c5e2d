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

export function decodeCursor(cursor: string | undefined): CursorPosition | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === "string" &&
      !Number.isNaN(Date.parse(value[0])) &&
      typeof value[1] === "string" &&
      isUuid(value[1])
    ) {
      return { at: value[0], id: value[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new HeraldError("validation_failed", "cursor is not one this API returned", [
    { path: "/cursor", message: "invalid cursor" },
  ]);
}

/** The page of `limit + 1` fetched rows: the first `limit`, and a cursor after the last when there are more. */
export function pageFrom<T>(rows: T[], limit: number, positionOf: (row: T) => CursorPosition): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}
