import type { FastifyInstance, InjectOptions } from "fastify";
import { expect } from "vitest";

/** Inject a request and parse its JSON body. */
export async function call(app: FastifyInstance, options: InjectOptions) {
  const response = await app.inject(options);
  const text = response.body;
  const body =
    text.length > 0 && /json/.test(String(response.headers["content-type"])) ? JSON.parse(text) : text;
  return { status: response.statusCode, headers: response.headers, body };
}

/** Assert a problem+json answer with the given status and code. */
export function expectProblem(
  response: Awaited<ReturnType<typeof call>>,
  status: number,
  code: string,
): void {
  expect({ status: response.status, code: response.body?.code }).toEqual({ status, code });
  expect(String(response.headers["content-type"])).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(JSON.stringify(response.body)).not.toMatch(/at .*\.(js|ts):\d+|select |insert /i);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Create a tenant through the admin API; its first API key. */
export async function newTenantKey(app: FastifyInstance, adminToken: string, name: string): Promise<string> {
  const created = await call(app, {
    method: "POST",
    url: "/api/v1/admin/tenants",
    headers: bearer(adminToken),
    payload: { name },
  });
  expect(created.status).toBe(201);
  return created.body.api_key as string;
}
