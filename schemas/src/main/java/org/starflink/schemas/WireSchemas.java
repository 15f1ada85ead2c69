package org.starflink.schemas;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;

/**
 * The schemas every released version of the wire types had, as committed under {@code schemas/<version>/} on the
 * classpath. Plain Avro binary carries no writer schema, so a reader that meets bytes its own schema cannot read
 * tries these as writer schemas (see {@code StrictAvroDecoder}); {@code SchemaCompatibilityTest} checks the
 * current schemas against all of them. When a version ships, copy the .avsc files to {@code schemas/<version>/}
 * and add it here.
 */
public final class WireSchemas {
    /** Released versions, oldest first (v3: BlockEvent, a new type). */
    public static final List<String> VERSIONS = List.of("v1", "v2", "v3");

    private WireSchemas() {
    }

    /** The schema {@code name} had in {@code version}. */
    public static Schema load(String version, String name) {
        return find(version, name).orElseThrow(() -> new IllegalStateException("missing committed schema "
                + path(version, name)));
    }

    /** The schema {@code name} had in {@code version}; empty if the type did not exist yet (BlockEvent before v3). */
    public static Optional<Schema> find(String version, String name) {
        String path = path(version, name);
        try (InputStream in = WireSchemas.class.getResourceAsStream(path)) {
            return in == null ? Optional.empty() : Optional.of(new Schema.Parser().parse(in));
        } catch (IOException e) {
            throw new UncheckedIOException(path, e);
        }
    }

    private static String path(String version, String name) {
        return "/schemas/" + version + "/" + name + ".avsc";
    }

    /** The released schemas of {@code current}'s record whose binary layout differs from it, newest first. */
    public static List<Schema> olderWriters(Schema current) {
        List<Schema> older = new ArrayList<>();
        for (int v = VERSIONS.size() - 1; v >= 0; v--) {
            Optional<Schema> released = find(VERSIONS.get(v), current.getName());
            if (released.isEmpty()) {
                break; // the type is newer than this version (and than every older one)
            }
            Schema schema = released.get();
            if (!sameLayout(schema, current) && older.stream().noneMatch(o -> sameLayout(o, schema))) {
                older.add(schema);
            }
        }
        return older;
    }

    /** Same fields of the same types in the same order (Avro's parsing canonical form: no docs, defaults, props). */
    public static boolean sameLayout(Schema a, Schema b) {
        return SchemaNormalization.toParsingForm(a).equals(SchemaNormalization.toParsingForm(b));
    }
}
