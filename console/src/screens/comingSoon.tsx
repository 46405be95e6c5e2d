import { useTitle } from "../layout.js";

export function ComingSoon({ title }: { title: string }) {
  useTitle(title);
  return (
    <section>
      <h1>{title}</h1>
      <p>Coming soon.</p>
    </section>
  );
}
