import { type TSchema, Type } from "@sinclair/typebox";

/** Shared TypeBox schemas of the HTTP contract. */

export const Uuid = Type.String({ format: "uuid" });
export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

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

export const ListQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
};

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Error responses every authenticated route can give, for the OpenAPI document. */
export const problemResponses = {
  400: Type.Ref("Problem"),
  401: Type.Ref("Problem"),
  404: Type.Ref("Problem"),
};
