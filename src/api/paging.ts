import { Type } from "@sinclair/typebox";

/** Lists page by an opaque cursor (sealed to its list by `sealListCursors`), `limit` items at a time. */

export const defaultLimit = 50;

/** The paging parameters of a list's query, to spread into its schema. */
export const ListQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: defaultLimit })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
};

/** The page a list query asks for. */
export const pageOf = (query: { limit?: number | undefined; cursor?: string | undefined }) => ({
  limit: query.limit ?? defaultLimit,
  cursor: query.cursor,
});
