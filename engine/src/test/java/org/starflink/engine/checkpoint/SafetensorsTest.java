package org.starflink.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.starflink.engine.EngineException;
import org.starflink.engine.testing.FloatFormat;
import org.starflink.engine.testing.SafetensorsWriter;

class SafetensorsTest {
    /** Normal numbers, both zeros, an F16 subnormal, values that round, and the edges of the F16 range. */
    private static final float[] VALUES = {
            1f, -2.5f, 0f, -0f, 3.1415927f, 1e-6f, 6.1e-5f, 65504f, -65504f, 0.1f, 1e-3f, 123.456f};

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(FloatFormat.class)
    void widensEachFormatToTheValuesWritten(FloatFormat format) throws IOException {
        float[] rounded = new float[VALUES.length];
        for (int i = 0; i < VALUES.length; i++) {
            rounded[i] = format.round(VALUES[i]);
        }
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("w", format, new long[] {3, 4}, rounded).write(file);

        try (Safetensors tensors = Safetensors.open(file)) {
            assertEquals(format.name(), tensors.header("w").dtype());
            assertArrayEquals(new long[] {3, 4}, tensors.header("w").shape());
            assertArrayEquals(rounded, tensors.read("w"));
        }
    }

    /** Bit patterns decoded by hand, so the reader is not only checked against the test's own encoder. */
    @Test
    void decodesKnownBitPatterns() throws IOException {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .addRaw("half", "F16", new long[] {5}, shorts(0x3C00, 0xC000, 0x0001, 0x7BFF, 0x8000))
                .addRaw("brain", "BF16", new long[] {3}, shorts(0x3F80, 0xC020, 0x7F80))
                .write(file);

        try (Safetensors tensors = Safetensors.open(file)) {
            assertArrayEquals(new float[] {1f, -2f, 0x1p-24f, 65504f, -0f}, tensors.read("half"));
            assertArrayEquals(new float[] {1f, -2.5f, Float.POSITIVE_INFINITY}, tensors.read("brain"));
        }
    }

    @Test
    void readsATensorSpreadOverSeveralMappedWindows() throws IOException {
        float[] values = new float[1001];
        for (int i = 0; i < values.length; i++) {
            values[i] = FloatFormat.BF16.round(i * 0.37f - 100f);
        }
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("first", FloatFormat.F32, new long[] {3}, new float[] {7f, 8f, 9f})
                .add("w", FloatFormat.BF16, new long[] {7, 143}, values).write(file);

        try (Safetensors tensors = Safetensors.open(file, 64)) {
            assertArrayEquals(values, tensors.read("w"));
        }
    }

    @Test
    void rejectsATruncatedFile() throws IOException {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("w", FloatFormat.F32, new long[] {4, 4}, new float[16]).write(file);
        try (RandomAccessFile raw = new RandomAccessFile(file.toFile(), "rw")) {
            raw.setLength(raw.length() - 5);
        }

        EngineException e = assertThrows(EngineException.class, () -> Safetensors.open(file));
        assertMessage(e, file.toString(), "truncated file", "tensor w");
    }

    @Test
    void rejectsAHeaderThatIsNotJson() throws IOException {
        byte[] garbage = "{\"w\": not json at all".getBytes(StandardCharsets.US_ASCII);
        Path file = dir.resolve("garbage.safetensors");
        Files.write(file, concat(length(garbage.length), garbage));

        EngineException e = assertThrows(EngineException.class, () -> Safetensors.open(file));
        assertMessage(e, file.toString(), "header is not JSON");
    }

    @ParameterizedTest
    @ValueSource(longs = {1000, -1})
    void rejectsAHeaderLengthBeyondTheFile(long headerLength) throws IOException {
        Path file = dir.resolve("t.safetensors");
        Files.write(file, concat(length(headerLength), "{}".getBytes(StandardCharsets.US_ASCII)));

        EngineException e = assertThrows(EngineException.class, () -> Safetensors.open(file));
        assertMessage(e, file.toString(), "header length", "beyond the file");
    }

    @Test
    void rejectsAFileTooShortForAHeaderLength() throws IOException {
        Path file = dir.resolve("t.safetensors");
        Files.write(file, new byte[] {1, 2, 3});

        EngineException e = assertThrows(EngineException.class, () -> Safetensors.open(file));
        assertMessage(e, file.toString(), "too short");
    }

    @Test
    void rejectsDataOffsetsThatDisagreeWithTheShape() throws IOException {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().addRaw("w", "BF16", new long[] {2, 3}, new byte[10]).write(file);

        EngineException e = assertThrows(EngineException.class, () -> Safetensors.open(file));
        assertMessage(e, file.toString(), "tensor w is BF16 [2, 3] = 12 bytes but its data_offsets span 10");
    }

    @ParameterizedTest
    @ValueSource(strings = {"I8", "F64"})
    void rejectsAnUnsupportedDtypeWhenTheTensorIsRead(String dtype) throws IOException {
        Path file = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("fine", FloatFormat.F32, new long[] {1}, new float[] {1f})
                .addRaw("odd", dtype, new long[] {2}, new byte[16]).write(file);

        try (Safetensors tensors = Safetensors.open(file)) {
            assertArrayEquals(new float[] {1f}, tensors.read("fine"));
            EngineException e = assertThrows(EngineException.class, () -> tensors.read("odd"));
            assertMessage(e, file.toString(), "tensor odd has unsupported dtype " + dtype, "supported: F32, F16, BF16");
        }
    }

    static void assertMessage(EngineException e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), () -> "expected \"" + part + "\" in: " + e.getMessage());
        }
        assertEquals(1, e.getMessage().lines().count(), "one-line message");
    }

    private static byte[] shorts(int... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int value : values) {
            buffer.putShort((short) value);
        }
        return buffer.array();
    }

    private static byte[] length(long headerLength) {
        return ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN).putLong(headerLength).array();
    }

    private static byte[] concat(byte[] first, byte[] second) {
        return ByteBuffer.allocate(first.length + second.length).put(first).put(second).array();
    }
}
