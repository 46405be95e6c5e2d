import { defineConfig } from "drizzle-kit";

// drizzle-kit only reads the schema and writes SQL; it never connects (migrations run through `herald migrate`).
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema/index.ts",
  out: "./drizzle",
});
