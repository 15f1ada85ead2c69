package org.starflink.engine.model;

/**
 * Llama 3.1's frequency-dependent RoPE scaling ("rope_type": "llama3"): long wavelengths are divided by
 * {@code factor}, short ones kept, the band between interpolated smoothly.
 */
public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {

    /** Scales the inverse frequency of one rotary pair, exactly as transformers' _compute_llama3_parameters. */
    public double scale(double inverseFrequency) {
        double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
        double highFreqWavelen = originalMaxPositions / highFreqFactor;
        double wavelen = 2 * Math.PI / inverseFrequency;
        if (wavelen < highFreqWavelen) {
            return inverseFrequency;
        }
        if (wavelen > lowFreqWavelen) {
            return inverseFrequency / factor;
        }
        double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * inverseFrequency / factor + smooth * inverseFrequency;
    }
}
