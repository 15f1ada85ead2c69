package org.starflink.engine.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.starflink.engine.EngineException;

/**
 * One .safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header that gives each
 * tensor's dtype, shape and byte range, then the data section. {@link #open} validates the whole header against
 * the file, so a truncated or corrupt file fails before any tensor is read; {@link #read} maps only the bytes of
 * one tensor and widens them to float32.
 */
public final class Safetensors implements AutoCloseable {
    private static final String METADATA_KEY = "__metadata__";
    /** Largest single mapping; a tensor is widened window by window since one mapping cannot exceed 2 GiB. */
    private static final long MAX_WINDOW_BYTES = 1L << 30;
    /** The safetensors format's own limit on the JSON header. */
    private static final long MAX_HEADER_BYTES = 100L << 20;
    /** The longest float[] the JVM reliably allocates. */
    private static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    /**
     * What the header says about one tensor.
     *
     * @param dtype     the dtype name as written ("BF16", "I8", ...), not necessarily one the engine can read
     * @param shape     dimensions, outermost first
     * @param dataBegin first byte, relative to the start of the data section
     * @param dataEnd   one past the last byte, relative to the start of the data section
     */
    public record TensorHeader(String dtype, long[] shape, long dataBegin, long dataEnd) {
        public TensorHeader {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long elementCount() {
            return Arrays.stream(shape).reduce(1L, Math::multiplyExact);
        }

        public String shapeText() {
            return Arrays.toString(shape);
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorHeader> tensors;
    private final long windowBytes;

    private Safetensors(Path file, FileChannel channel, long dataStart, Map<String, TensorHeader> tensors,
                        long windowBytes) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.windowBytes = windowBytes;
    }

    /** Opens and validates {@code file}; every problem is an {@link EngineException} naming the file. */
    public static Safetensors open(Path file) {
        return open(file, MAX_WINDOW_BYTES);
    }

    /** As {@link #open(Path)}, mapping at most {@code windowBytes} at a time (small in tests, to cross windows). */
    static Safetensors open(Path file, long windowBytes) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new EngineException(file + ": cannot open safetensors file (" + e + ")", e);
        }
        try {
            long fileSize = channel.size();
            if (fileSize < Long.BYTES) {
                throw fail(file, "only " + fileSize + " bytes, too short for a safetensors header");
            }
            ByteBuffer lengthBytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, Long.BYTES)
                    .order(ByteOrder.LITTLE_ENDIAN);
            long headerLength = lengthBytes.getLong(0);
            long dataSize = fileSize - Long.BYTES - headerLength;
            if (headerLength < 0 || dataSize < 0) {
                throw fail(file, "header length " + Long.toUnsignedString(headerLength)
                        + " is beyond the file (" + fileSize + " bytes)");
            }
            if (headerLength > MAX_HEADER_BYTES) {
                throw fail(file, "header length " + headerLength + " exceeds the format's limit of "
                        + MAX_HEADER_BYTES + " bytes");
            }
            byte[] header = new byte[(int) headerLength];
            channel.map(FileChannel.MapMode.READ_ONLY, Long.BYTES, headerLength).get(header);
            Map<String, TensorHeader> tensors = parseHeader(file, header, dataSize);
            return new Safetensors(file, channel, Long.BYTES + headerLength, tensors, windowBytes);
        } catch (IOException e) {
            closeQuietly(channel);
            throw new EngineException(file + ": cannot read safetensors file (" + e + ")", e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    public Path file() {
        return file;
    }

    public Set<String> names() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public TensorHeader header(String name) {
        TensorHeader header = tensors.get(name);
        if (header == null) {
            throw fail(file, "no tensor " + name);
        }
        return header;
    }

    /** The tensor's elements, row-major, widened to float32. */
    public float[] read(String name) {
        float[] values = new float[elementCount(name)];
        forEachWindow(name, (dtype, window, offset, count) -> dtype.widen(window, values, offset, count));
        return values;
    }

    /** The tensor's elements, row-major, as BF16 bits: copied from BF16 data, rounded to nearest even otherwise. */
    public short[] readBf16(String name) {
        short[] bits = new short[elementCount(name)];
        forEachWindow(name, (dtype, window, offset, count) -> dtype.toBf16(window, bits, offset, count));
        return bits;
    }

    /** What a reader does with one mapped window of a tensor: {@code count} elements from element {@code offset}. */
    private interface WindowReader {
        void accept(SafetensorsDtype dtype, ByteBuffer window, int offset, int count);
    }

    private int elementCount(String name) {
        long count = header(name).elementCount();
        if (count > MAX_ELEMENTS) {
            throw fail(file, "tensor " + name + " has " + count + " elements, more than one Java array holds");
        }
        return (int) count;
    }

    /** Maps the tensor window by window (one mapping cannot exceed 2 GiB) and hands each to {@code reader}. */
    private void forEachWindow(String name, WindowReader reader) {
        TensorHeader header = header(name);
        SafetensorsDtype dtype = SafetensorsDtype.forName(header.dtype());
        if (dtype == null) {
            throw fail(file, "tensor " + name + " has unsupported dtype " + header.dtype() + " (supported: "
                    + Arrays.stream(SafetensorsDtype.values()).map(Enum::name).collect(Collectors.joining(", "))
                    + ")");
        }
        long count = header.elementCount();
        long windowElements = windowBytes / dtype.bytes;
        try {
            for (long done = 0; done < count; done += windowElements) {
                int n = (int) Math.min(windowElements, count - done);
                MappedByteBuffer window = channel.map(FileChannel.MapMode.READ_ONLY,
                        dataStart + header.dataBegin() + done * dtype.bytes, (long) n * dtype.bytes);
                reader.accept(dtype, window.order(ByteOrder.LITTLE_ENDIAN), (int) done, n);
            }
        } catch (IOException e) {
            throw new EngineException(file + ": cannot read tensor " + name + " (" + e + ")", e);
        }
    }

    /** Releases the file; mapped windows already handed out stay valid until they are garbage collected. */
    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException e) {
            throw new EngineException(file + ": cannot close safetensors file (" + e + ")", e);
        }
    }

    private static Map<String, TensorHeader> parseHeader(Path file, byte[] header, long dataSize) {
        JsonNode root = Json.parseObject(header, file + ": header");
        Map<String, TensorHeader> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : root.properties()) {
            if (!field.getKey().equals(METADATA_KEY)) {
                TensorHeader tensor = parseTensor(file, field.getKey(), field.getValue());
                checkBytes(file, field.getKey(), tensor, dataSize);
                tensors.put(field.getKey(), tensor);
            }
        }
        return tensors;
    }

    private static TensorHeader parseTensor(Path file, String name, JsonNode entry) {
        JsonNode dtype = entry.get("dtype");
        JsonNode shape = entry.get("shape");
        JsonNode offsets = entry.get("data_offsets");
        boolean wellFormed = dtype != null && dtype.isTextual()
                && shape != null && shape.isArray()
                && offsets != null && offsets.isArray() && offsets.size() == 2
                && offsets.get(0).canConvertToExactIntegral() && offsets.get(1).canConvertToExactIntegral();
        long[] dimensions = wellFormed ? new long[shape.size()] : null;
        for (int i = 0; wellFormed && i < shape.size(); i++) {
            wellFormed = shape.get(i).canConvertToExactIntegral() && shape.get(i).asLong() >= 0;
            dimensions[i] = shape.get(i).asLong();
        }
        if (!wellFormed) {
            throw fail(file, "malformed header entry for tensor " + name + ": " + entry);
        }
        return new TensorHeader(dtype.asText(), dimensions, offsets.get(0).asLong(), offsets.get(1).asLong());
    }

    private static void checkBytes(Path file, String name, TensorHeader tensor, long dataSize) {
        if (tensor.dataBegin() < 0 || tensor.dataEnd() < tensor.dataBegin()) {
            throw fail(file, "tensor " + name + " has invalid data_offsets [" + tensor.dataBegin() + ", "
                    + tensor.dataEnd() + "]");
        }
        if (tensor.dataEnd() > dataSize) {
            throw fail(file, "truncated file: tensor " + name + " needs data bytes [" + tensor.dataBegin() + ", "
                    + tensor.dataEnd() + ") but the file holds only " + dataSize);
        }
        SafetensorsDtype dtype = SafetensorsDtype.forName(tensor.dtype());
        if (dtype == null) {
            return; // unreadable dtypes are reported when (and only if) the tensor is read
        }
        long expected;
        try {
            expected = Math.multiplyExact(tensor.elementCount(), dtype.bytes);
        } catch (ArithmeticException e) {
            throw fail(file, "tensor " + name + " has an impossibly large shape " + tensor.shapeText());
        }
        long actual = tensor.dataEnd() - tensor.dataBegin();
        if (expected != actual) {
            throw fail(file, "tensor " + name + " is " + dtype + " " + tensor.shapeText() + " = " + expected
                    + " bytes but its data_offsets span " + actual);
        }
    }

    private static EngineException fail(Path file, String problem) {
        return new EngineException(file + ": " + problem);
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // the open failed already; that error is the one worth reporting
        }
    }
}
