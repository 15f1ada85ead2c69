package org.starflink.engine.backend;

/** The token-embedding lookup every backend shares: rows of the [vocab, dim] table, copied. */
public final class TokenEmbedding {
    private TokenEmbedding() {
    }

    /** [T, dim] rows of {@code table} for {@code tokens}. */
    public static float[] lookup(float[] table, int dim, int[] tokens) {
        float[] x = new float[tokens.length * dim];
        for (int t = 0; t < tokens.length; t++) {
            System.arraycopy(table, tokens[t] * dim, x, t * dim, dim);
        }
        return x;
    }
}
