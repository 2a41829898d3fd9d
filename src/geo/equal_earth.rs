//! The Equal Earth projection exactly as GeoCLIP computes it (`equal_earth_projection` in
//! `geoclip/model/location_encoder.py`): f32 arithmetic in the same order as PyTorch, so the
//! random Fourier features at sigma 256 see the same inputs to the last bit where possible.

pub const EQUAL_EARTH_A1: f32 = 1.340_264;
pub const EQUAL_EARTH_A2: f32 = -0.081_106;
pub const EQUAL_EARTH_A3: f32 = 0.000_893;
pub const EQUAL_EARTH_A4: f32 = 0.003_796;
/// GeoCLIP's scale factor: the output is `[x, y] * SF / 180`.
pub const EQUAL_EARTH_SF: f32 = 66.503_36;

/// Projects `[lat, lon]` in degrees to GeoCLIP's scaled Equal Earth `[x, y]`.
///
/// Mirrors the PyTorch f32 computation: the Python-float products (`9 * A4`, ...) are formed in
/// f64 and rounded to f32 once, as PyTorch does when it multiplies a float tensor by a scalar.
pub fn equal_earth_projection_f32(lat_deg: f32, lon_deg: f32) -> [f32; 2] {
    const DEG2RAD: f32 = (std::f64::consts::PI / 180.0) as f32;
    let a1 = 1.340_264_f64;
    let a2 = -0.081_106_f64;
    let a3 = 0.000_893_f64;
    let a4 = 0.003_796_f64;
    let sqrt3 = 3.0_f32.sqrt();

    let lat_rad = lat_deg * DEG2RAD;
    let lon_rad = lon_deg * DEG2RAD;
    let sin_theta = (sqrt3 / 2.0) * lat_rad.sin();
    let theta = sin_theta.asin();
    let denominator = 3.0_f32
        * ((9.0 * a4) as f32 * theta.powf(8.0)
            + (7.0 * a3) as f32 * theta.powf(6.0)
            + (3.0 * a2) as f32 * theta.powf(2.0)
            + a1 as f32);
    let x = (2.0 * sqrt3 * lon_rad * theta.cos()) / denominator;
    let y = a4 as f32 * theta.powf(9.0)
        + a3 as f32 * theta.powf(7.0)
        + a2 as f32 * theta.powf(3.0)
        + a1 as f32 * theta;
    [(x * EQUAL_EARTH_SF) / 180.0, (y * EQUAL_EARTH_SF) / 180.0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn origin_maps_to_origin() {
        assert_eq!(equal_earth_projection_f32(0.0, 0.0), [0.0, 0.0]);
    }

    #[test]
    fn symmetric_in_both_axes() {
        let [x, y] = equal_earth_projection_f32(35.0, 120.0);
        let [xm, ym] = equal_earth_projection_f32(-35.0, -120.0);
        assert_relative_eq!(x, -xm);
        assert_relative_eq!(y, -ym);
        assert!(x > 0.0 && y > 0.0, "east and north are positive");
    }

    #[test]
    fn known_extremes() {
        // The Equal Earth map is 2 * 2.7066 wide at the equator and 2 * 1.3173 tall (unit sphere).
        let [x, _] = equal_earth_projection_f32(0.0, 180.0);
        assert_relative_eq!(x * 180.0 / EQUAL_EARTH_SF, 2.706_6, epsilon = 1e-3);
        let [_, y] = equal_earth_projection_f32(90.0, 0.0);
        assert_relative_eq!(y * 180.0 / EQUAL_EARTH_SF, 1.317_3, epsilon = 1e-3);
    }
}
