package org.starflink.engine.checkpoint;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.tokenizer.Llama2cTokenizer;

/**
 * Karpathy's llama2.c "legacy" checkpoint: a header of 7 little-endian int32 (dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied output head) followed by
 * float32 arrays in a fixed order. RoPE rotates interleaved pairs; RMSNorm eps is 1e-5; theta 10000.
 */
public final class Llama2cCheckpoint {
    private static final int HEADER_BYTES = 7 * Integer.BYTES;
    /** llama2.c stops generation when the model emits BOS (the sequence delimiter of its training data). */
    private static final int BOS = 1;
    private static final int EOS = 2;

    private Llama2cCheckpoint() {
    }

    public static Model load(Path checkpoint, Path tokenizerFile) {
        if (tokenizerFile == null) {
            tokenizerFile = findTokenizer(checkpoint);
        }
        try (FileChannel channel = FileChannel.open(checkpoint, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < HEADER_BYTES) {
                throw new EngineException("corrupt llama2.c checkpoint " + checkpoint + ": " + size
                        + " bytes is shorter than its 28-byte header");
            }
            MappedByteBuffer bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, size);
            bytes.order(ByteOrder.LITTLE_ENDIAN);
            int dim = bytes.getInt();
            int hiddenDim = bytes.getInt();
            int layers = bytes.getInt();
            int heads = bytes.getInt();
            int kvHeads = bytes.getInt();
            int vocab = bytes.getInt();
            int seqLen = bytes.getInt();
            boolean tied = vocab > 0;
            vocab = Math.abs(vocab);
            if (dim <= 0 || heads <= 0 || dim % heads != 0) {
                throw new EngineException("corrupt llama2.c checkpoint " + checkpoint + ": header has dim=" + dim
                        + " heads=" + heads);
            }
            ModelConfig config = new ModelConfig("llama2.c", dim, hiddenDim, layers, heads, kvHeads, dim / heads,
                    vocab, seqLen, 10000.0, RopeStyle.INTERLEAVED, null, 1e-5, false, tied, BOS, Set.of(BOS, EOS));
            long expected = expectedBytes(config);
            if (size < expected) {
                throw new EngineException("truncated llama2.c checkpoint " + checkpoint + ": " + size
                        + " bytes, the header's shapes need " + expected);
            }
            FloatBuffer floats = bytes.position(HEADER_BYTES).slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
            return new Model(checkpoint.toString(), config, readWeights(config, floats),
                    Llama2cTokenizer.load(tokenizerFile, vocab));
        } catch (IOException e) {
            throw new EngineException("cannot read checkpoint " + checkpoint + ": " + e.getMessage(), e);
        }
    }

    /** tokenizer.bin next to the checkpoint, else the single tok*.bin there. */
    private static Path findTokenizer(Path checkpoint) {
        Path dir = checkpoint.toAbsolutePath().getParent();
        Path standard = dir.resolve("tokenizer.bin");
        if (Files.exists(standard)) {
            return standard;
        }
        try (var files = Files.list(dir)) {
            List<Path> candidates = files.filter(p -> p.getFileName().toString().matches("tok.*\\.bin")).toList();
            if (candidates.size() == 1) {
                return candidates.get(0);
            }
        } catch (IOException e) {
            throw new EngineException("cannot list " + dir + ": " + e.getMessage(), e);
        }
        throw new EngineException("no tokenizer.bin next to " + checkpoint + "; pass --tokenizer FILE");
    }

    private static long expectedBytes(ModelConfig c) {
        long kv = c.kvWidth();
        long perLayer = 2L * c.dim() + 2L * c.dim() * c.queryWidth() + 2L * c.dim() * kv + 3L * c.dim() * c.hiddenDim();
        long ropeTables = (long) c.maxPositions() * c.headDim(); // freq_cis_real + freq_cis_imag, unused
        long floats = (long) c.vocabSize() * c.dim() + perLayer * c.layers() + c.dim() + ropeTables
                + (c.tiedEmbeddings() ? 0 : (long) c.vocabSize() * c.dim());
        return HEADER_BYTES + floats * Float.BYTES;
    }

    private static ModelWeights readWeights(ModelConfig c, FloatBuffer in) {
        int dim = c.dim();
        int layers = c.layers();
        float[] embedding = read(in, c.vocabSize() * dim);
        float[][] attentionNorm = readPerLayer(in, layers, dim);
        float[][] wq = readPerLayer(in, layers, c.queryWidth() * dim);
        float[][] wk = readPerLayer(in, layers, c.kvWidth() * dim);
        float[][] wv = readPerLayer(in, layers, c.kvWidth() * dim);
        float[][] wo = readPerLayer(in, layers, dim * c.queryWidth());
        float[][] ffnNorm = readPerLayer(in, layers, dim);
        float[][] w1 = readPerLayer(in, layers, c.hiddenDim() * dim);
        float[][] w2 = readPerLayer(in, layers, dim * c.hiddenDim());
        float[][] w3 = readPerLayer(in, layers, c.hiddenDim() * dim);
        float[] finalNorm = read(in, dim);
        in.position(in.position() + c.maxPositions() * c.headDim()); // skip the legacy RoPE tables
        float[] head = c.tiedEmbeddings() ? embedding : read(in, c.vocabSize() * dim);
        List<LayerWeights> layerWeights = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            layerWeights.add(new LayerWeights(attentionNorm[l], wq[l], wk[l], wv[l], null, null, null, wo[l],
                    ffnNorm[l], w1[l], w3[l], w2[l]));
        }
        return new ModelWeights(embedding, layerWeights, finalNorm, head);
    }

    private static float[][] readPerLayer(FloatBuffer in, int layers, int size) {
        float[][] out = new float[layers][];
        for (int l = 0; l < layers; l++) {
            out[l] = read(in, size);
        }
        return out;
    }

    private static float[] read(FloatBuffer in, int size) {
        float[] out = new float[size];
        in.get(out);
        return out;
    }
}
