package org.starflink.engine.backend;

/** The token-embedding lookup every CPU backend shares: rows of the [vocab, dim] table, copied. */
public final class TokenEmbedding {
    private TokenEmbedding() {
    }

    /** [T, dim] rows of {@code table} for {@code tokens}; an id outside the vocabulary is an error. */
    public static float[] lookup(float[] table, int dim, int[] tokens) {
        int vocab = table.length / dim;
        float[] x = new float[tokens.length * dim];
        for (int t = 0; t < tokens.length; t++) {
            if (tokens[t] < 0 || tokens[t] >= vocab) {
                throw new IllegalArgumentException("token id " + tokens[t] + " is outside the vocabulary of " + vocab);
            }
            System.arraycopy(table, tokens[t] * dim, x, t * dim, dim);
        }
        return x;
    }
}
