package org.starflink.pipeline.client;

/**
 * Kafka could not be reached, or did not confirm what was sent: the message names the broker and the cause, in one
 * line. Nothing about the input is wrong; trying again later (or elsewhere) may succeed.
 */
public final class KafkaUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KafkaUnavailableException(String message) {
        super(message);
    }
}
