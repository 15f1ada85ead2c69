package org.starflink.engine.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.starflink.engine.EngineException;

/**
 * llama2.c's tokenizer.bin: SentencePiece-style BPE with byte fallback, encoded exactly as run.c does it.
 * File: int32 max_token_length, then per token: float32 merge score, int32 length, UTF-8 bytes.
 */
public final class Llama2cTokenizer implements Tokenizer {
    private static final int BOS = 1;
    private static final int EOS = 2;
    /** Byte b falls back to token b + 3 (ids 0..2 are unk, BOS, EOS). */
    private static final int BYTE_FALLBACK_OFFSET = 3;

    private final String[] pieces;
    private final float[] scores;
    private final Map<String, Integer> idsByPiece;
    /**
     * No piece has a space after its first character, so no merge ever joins a letter to the space after it: the
     * pieces on either side of a {@link WordBoundaryCut} merge independently, and merging each side alone makes the
     * same merges in the same order (the leftmost-best pair of one side is never outranked by a pair it cannot
     * touch). True for llama2.c's and Llama 2's vocabularies, whose pieces carry their space in front.
     */
    private final boolean exactCuts;

    private Llama2cTokenizer(String[] pieces, float[] scores) {
        this.pieces = pieces;
        this.scores = scores;
        this.idsByPiece = new HashMap<>();
        boolean spaceOnlyInFront = true;
        for (int i = 0; i < pieces.length; i++) {
            idsByPiece.putIfAbsent(pieces[i], i);
            spaceOnlyInFront &= pieces[i].indexOf(' ', 1) < 0;
        }
        this.exactCuts = spaceOnlyInFront;
    }

    public static Llama2cTokenizer load(Path file, int vocabSize) {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new EngineException("cannot read tokenizer " + file + ": " + e.getMessage(), e);
        }
        ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        String[] pieces = new String[vocabSize];
        float[] scores = new float[vocabSize];
        try {
            in.getInt(); // max_token_length: not needed in Java
            for (int i = 0; i < vocabSize; i++) {
                scores[i] = in.getFloat();
                int length = in.getInt();
                if (length < 0 || length > in.remaining()) {
                    throw new EngineException("corrupt tokenizer " + file + ": token " + i + " has length " + length);
                }
                byte[] bytes = new byte[length];
                in.get(bytes);
                pieces[i] = new String(bytes, StandardCharsets.UTF_8);
            }
        } catch (java.nio.BufferUnderflowException e) {
            throw new EngineException("truncated tokenizer " + file + ": expected " + vocabSize + " tokens");
        }
        return new Llama2cTokenizer(pieces, scores);
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    @Override
    public int[] encode(String text) {
        return encode(text, true);
    }

    @Override
    public boolean hasExactCuts() {
        return exactCuts;
    }

    @Override
    public int lastExactCut(String text, int from) {
        return exactCuts ? WordBoundaryCut.last(text, from) : -1;
    }

    @Override
    public int[] encodeAfterCut(String rest) {
        if (!exactCuts) {
            return Tokenizer.super.encodeAfterCut(rest); // throws
        }
        return encode(rest, false);
    }

    private int[] encode(String text, boolean dummyPrefix) {
        List<Integer> tokens = new ArrayList<>();
        if (dummyPrefix && !text.isEmpty()) {
            tokens.add(idsByPiece.get(" ")); // run.c's dummy prefix
        }
        text.codePoints().forEach(cp -> {
            String ch = new String(Character.toChars(cp));
            Integer id = idsByPiece.get(ch);
            if (id != null) {
                tokens.add(id);
            } else {
                for (byte b : ch.getBytes(StandardCharsets.UTF_8)) {
                    tokens.add((b & 0xff) + BYTE_FALLBACK_OFFSET);
                }
            }
        });
        return mergePairs(tokens.stream().mapToInt(Integer::intValue).toArray());
    }

    /**
     * run.c's merge loop: repeatedly merge the adjacent pair whose concatenation is the best-scoring vocabulary
     * entry, the leftmost among equals. run.c rescans the sequence after every merge (quadratic: a minute for a
     * 64K-character document); this keeps the candidate pairs in a heap over a linked list instead, O(n log n),
     * with exactly the same merges in the same order. Heap entries go stale when a neighbour merges; they are
     * recognised by the token ids they were made for and skipped.
     */
    private int[] mergePairs(int[] initial) {
        int n = initial.length;
        int[] ids = initial.clone();
        int[] next = new int[n];
        int[] prev = new int[n];
        boolean[] alive = new boolean[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
            alive[i] = true;
        }
        // entry: {left index, left id, right id, merged id}; best score first, then leftmost
        java.util.PriorityQueue<int[]> heap = new java.util.PriorityQueue<>((a, b) -> {
            int byScore = Float.compare(scores[b[3]], scores[a[3]]);
            return byScore != 0 ? byScore : Integer.compare(a[0], b[0]);
        });
        for (int i = 0; i + 1 < n; i++) {
            offer(heap, i, ids[i], ids[i + 1]);
        }
        while (!heap.isEmpty()) {
            int[] best = heap.poll();
            int left = best[0];
            int right = alive[left] ? next[left] : -1;
            if (right < 0 || ids[left] != best[1] || ids[right] != best[2]) {
                continue; // stale: a neighbour merged since this pair was offered
            }
            ids[left] = best[3];
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
            }
            if (prev[left] >= 0) {
                offer(heap, prev[left], ids[prev[left]], ids[left]);
            }
            if (next[left] >= 0) {
                offer(heap, left, ids[left], ids[next[left]]);
            }
        }
        int[] merged = new int[n];
        int count = 0;
        for (int i = 0; i >= 0 && i < n; i = next[i]) {
            merged[count++] = ids[i];
        }
        return java.util.Arrays.copyOf(merged, count);
    }

    private void offer(java.util.PriorityQueue<int[]> heap, int left, int leftId, int rightId) {
        Integer merged = idsByPiece.get(pieces[leftId] + pieces[rightId]);
        if (merged != null) {
            heap.add(new int[] {left, leftId, rightId, merged});
        }
    }

    @Override
    public String decode(int[] tokens) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        int previous = -1;
        for (int token : tokens) {
            if (token != BOS && token != EOS) {
                String piece = pieces[token];
                if (previous == BOS && piece.startsWith(" ")) {
                    piece = piece.substring(1); // run.c strips the dummy prefix's space after BOS
                }
                if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
                    bytes.write(Integer.parseInt(piece.substring(3, 5), 16));
                } else {
                    bytes.writeBytes(piece.getBytes(StandardCharsets.UTF_8));
                }
            }
            previous = token;
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }
}
