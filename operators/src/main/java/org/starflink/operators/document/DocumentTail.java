package org.starflink.operators.document;

/**
 * What a document cut at exact cuts keeps between chunks (keyed state of the {@link DocumentOperator} while it is
 * incomplete): the text after the last exact cut, which is not tokenized yet, and the final tokens before it that
 * no block holds yet. A Flink POJO (public fields, no-argument constructor), never Kryo.
 *
 * <p>Invariants: context tokens [0, {@link #tokenized}) are final; blocks hold [0, emittedTokens) of them and
 * {@link #carry} holds the rest (fewer than a block); {@link #text} starts at an exact cut (or at the document's
 * start while {@link #tokenized} is 0, and then the next piece gets BOS).
 */
public class DocumentTail {
    /** The text after the last exact cut. */
    public String text = "";
    /** Context tokens before {@link #text}, BOS included; 0 while nothing is tokenized. */
    public int tokenized;
    /** Final context tokens [emittedTokens, tokenized): not yet in a block. */
    public int[] carry = new int[0];
    /** The anchor that blocks after the first carry: set when block 0 goes out, empty before. */
    public int[] anchor = new int[0];

    public DocumentTail() {
    }

    DocumentTail(String text, int tokenized, int[] carry, int[] anchor) {
        this.text = text;
        this.tokenized = tokenized;
        this.carry = carry;
        this.anchor = anchor;
    }
}
