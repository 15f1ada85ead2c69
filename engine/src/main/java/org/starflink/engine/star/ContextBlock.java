package org.starflink.engine.star;

/**
 * One block of a document's context.
 *
 * @param index  0 for the block that holds the anchor
 * @param start  global position of its first token
 * @param tokens its tokens; token j sits at position start + j
 */
public record ContextBlock(int index, int start, int[] tokens) {
}
