import { type TSchema, Type } from "@sinclair/typebox";
import { eventTypePattern } from "../events/types.js";

/** Shared TypeBox schemas of the HTTP contract. */

export const Uuid = Type.String({ format: "uuid" });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/** A required string of 1 to `max` characters. */
export const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

/** One of a vocabulary's values (domain/vocabularies.ts). */
export const literals = <T extends string>(values: readonly T[]) =>
  Type.Union(values.map((v) => Type.Literal(v)));

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** An event type (`message.delivered`): lower-case dot-separated segments. */
export const EventType = Type.String({ pattern: eventTypePattern.source, maxLength: 200 });
/** An event type or a pattern of them: `*`, an exact type, or a prefix ending in `.*` (`message.*`). */
export const EventTypePattern = Type.String({
  pattern: `^(\\*|${eventTypePattern.source.slice(1, -1)}(\\.\\*)?)$`,
  maxLength: 200,
});

export const DateTime = Type.String({ format: "date-time" });
/** A time, or a date standing for the whole day (UTC); see `rangeStart`/`rangeEnd`. */
export const DateOrTime = Type.String({ anyOf: [{ format: "date" }, { format: "date-time" }] });

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: "Problem" },
);

/** The query of a route that takes no parameters: any is refused (400). */
export const NoQuery = Type.Object({}, { additionalProperties: false });

/** A 204 answer: no body (`reply.send()`); documented as `null`, as the OpenAPI document always has. */
export const NoContent = Type.Unsafe<undefined>(Type.Null());

/** Error responses every authenticated route can give, for the OpenAPI document. */
export const problemResponses = {
  400: Type.Ref("Problem"),
  401: Type.Ref("Problem"),
  404: Type.Ref("Problem"),
};
