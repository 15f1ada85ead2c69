package org.starflink.engine.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Writes a .safetensors file, including tensors of dtypes the engine refuses, for tests. */
public final class SafetensorsWriter {
    private record Entry(String name, String dtype, long[] shape, byte[] data) {
    }

    private final List<Entry> entries = new ArrayList<>();

    /** Adds {@code values} encoded in {@code format}; values should already be rounded to it. */
    public SafetensorsWriter add(String name, FloatFormat format, long[] shape, float[] values) {
        return addRaw(name, format.name(), shape, format.encode(values));
    }

    /** Adds a tensor of any dtype from its raw little-endian bytes. */
    public SafetensorsWriter addRaw(String name, String dtype, long[] shape, byte[] data) {
        entries.add(new Entry(name, dtype, shape.clone(), data.clone()));
        return this;
    }

    public void write(Path file) throws IOException {
        ObjectNode header = new ObjectMapper().createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Entry entry : entries) {
            ObjectNode tensor = header.putObject(entry.name());
            tensor.put("dtype", entry.dtype());
            ArrayNode shape = tensor.putArray("shape");
            for (long dimension : entry.shape()) {
                shape.add(dimension);
            }
            tensor.putArray("data_offsets").add(offset).add(offset + entry.data().length);
            offset += entry.data().length;
        }
        // Like the reference writer, pad the header with spaces so the data section starts 8-byte aligned.
        StringBuilder headerText = new StringBuilder(header.toString());
        while (headerText.toString().getBytes(StandardCharsets.UTF_8).length % 8 != 0) {
            headerText.append(' ');
        }
        byte[] headerBytes = headerText.toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (Entry entry : entries) {
                out.write(entry.data());
            }
        }
    }
}
