import type { DocumentNode, GraphQLError } from 'graphql';

/** How many checked operations are kept, the least recently used going first. */
const KEPT = 1_000;
/** Longer texts are checked each time and not kept (a few would hold a lot). */
const KEPT_TEXT_MAX = 4_096;

/** An operation parsed and validated, and the short key its text is known by while it is kept. */
export interface CheckedDocument {
  document: DocumentNode;
  key: string;
}

/**
 * Operations parsed and validated once per text, with one document held for every subscription
 * that sends it, rather than one syntax tree per subscription: every frontend sends the same few.
 * graphql-js never changes a document, and validation depends on its text alone (the limits'
 * rules included), so what one subscription was told stands for the next. What fails is not kept.
 */
export class CheckedDocuments {
  private readonly byText = new Map<string, CheckedDocument>();
  private checkedSoFar = 0;

  /** `check` parses and validates a text: its document, or the errors to answer. */
  constructor(private readonly check: (text: string) => DocumentNode | readonly GraphQLError[]) {}

  of(text: string): CheckedDocument | readonly GraphQLError[] {
    const kept = this.byText.get(text);
    if (kept) {
      // Used again: last to go.
      this.byText.delete(text);
      this.byText.set(text, kept);
      return kept;
    }
    const document = this.check(text);
    if (!('kind' in document)) return document;
    if (text.length > KEPT_TEXT_MAX) return { document, key: text };
    const fresh = { document, key: `operation ${++this.checkedSoFar}` };
    if (this.byText.size >= KEPT) this.byText.delete(this.byText.keys().next().value!);
    this.byText.set(text, fresh);
    return fresh;
  }
}
