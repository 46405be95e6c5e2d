import type { ComponentChildren } from "preact";

/**
 * A destructive action asked twice: the `ask` button, then (while `open`) the question with the confirming
 * button and the one that keeps things as they are.
 */
export function Confirm({
  open,
  onOpen,
  onKeep,
  onConfirm,
  ask,
  askClass,
  question,
  confirm,
  keep,
  busy = false,
  as: Tag = "span",
}: {
  open: boolean;
  onOpen: () => void;
  onKeep: () => void;
  onConfirm: () => void;
  /** The first button's name ("Delete", "Remove ada@example.com"). */
  ask: ComponentChildren;
  askClass?: string;
  question: ComponentChildren;
  /** The confirming button's name ("Confirm delete"). */
  confirm: string;
  /** The other button's name ("Cancel", "Keep"). */
  keep: string;
  busy?: boolean;
  /** The element holding the question (a div in a table cell). @defaultValue "span" */
  as?: "span" | "div";
}) {
  if (!open)
    return (
      <button type="button" class={askClass} onClick={onOpen}>
        {ask}
      </button>
    );
  return (
    <Tag class="confirm">
      <span>{question}</span>{" "}
      <button type="button" class="danger" disabled={busy} onClick={onConfirm}>
        {confirm}
      </button>{" "}
      <button type="button" class="secondary" onClick={onKeep}>
        {keep}
      </button>
    </Tag>
  );
}
