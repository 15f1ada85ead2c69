package org.starflink.engine.checkpoint;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightSource;
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
            return new Model(checkpoint.toString(), config, new Llama2cWeights(config, floats),
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

    /**
     * The tensors of the mapped file, in its fixed order: embedding, then each kind for all layers (attention
     * norms, wq, wk, wv, wo, ffn norms, w1, w2, w3), the final norm, the unused legacy RoPE tables, and the
     * output head unless tied. Reads copy one tensor out of the mapping.
     */
    private static final class Llama2cWeights implements WeightSource {
        private final FloatBuffer floats;
        private final ModelConfig config;
        private final Map<WeightName, Integer> offsets = new HashMap<>();

        Llama2cWeights(ModelConfig c, FloatBuffer floats) {
            this.floats = floats;
            this.config = c;
            int offset = place(WeightName.Kind.TOKEN_EMBEDDING, -1, 0);
            for (WeightName.Kind kind : List.of(WeightName.Kind.ATTENTION_NORM, WeightName.Kind.WQ,
                    WeightName.Kind.WK, WeightName.Kind.WV, WeightName.Kind.WO, WeightName.Kind.FFN_NORM,
                    WeightName.Kind.W_GATE, WeightName.Kind.W_DOWN, WeightName.Kind.W_UP)) {
                for (int l = 0; l < c.layers(); l++) {
                    offset = place(kind, l, offset);
                }
            }
            offset = place(WeightName.Kind.FINAL_NORM, -1, offset);
            offset += c.maxPositions() * c.headDim(); // the legacy RoPE tables
            offsets.put(WeightName.of(WeightName.Kind.OUTPUT_HEAD), c.tiedEmbeddings() ? 0 : offset);
        }

        private int place(WeightName.Kind kind, int layer, int offset) {
            WeightName name = new WeightName(kind, layer);
            offsets.put(name, offset);
            return offset + size(name);
        }

        private int size(WeightName name) {
            return Arrays.stream(name.shape(config)).reduce(1, Math::multiplyExact);
        }

        @Override
        public float[] read(WeightName name) {
            Integer offset = offsets.get(name);
            if (offset == null) {
                throw new EngineException("a llama2.c checkpoint has no " + name);
            }
            float[] values = new float[size(name)];
            floats.slice(offset, values.length).get(values);
            return values;
        }
    }
}
