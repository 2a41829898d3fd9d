//! The window's panel sizes, as pure maths: the browser (left) and the side panel (right)
//! start at a share of the window and may never squeeze the map below
//! [`MIN_MAP_WIDTH`] × [`MIN_MAP_HEIGHT`]; the preview goes beside the map when the centre is
//! wide enough, above it when only tall enough, and collapses (a button brings it back once
//! there is room) otherwise.

use egui::Vec2;

/// The smallest map area (its toolbar included) the layout keeps, in points.
pub const MIN_MAP_WIDTH: f32 = 320.0;
pub const MIN_MAP_HEIGHT: f32 = 300.0;
/// The narrowest the panels get.
pub const BROWSER_MIN_WIDTH: f32 = 200.0;
pub const SIDE_MIN_WIDTH: f32 = 250.0;
/// The smallest useful preview.
pub const PREVIEW_MIN_WIDTH: f32 = 260.0;
pub const PREVIEW_MIN_HEIGHT: f32 = 140.0;

/// The browser's width on first start: a quarter of the window, within limits.
pub fn browser_default_width(window_width: f32) -> f32 {
    (window_width * 0.24).clamp(BROWSER_MIN_WIDTH, 380.0)
}

/// The side panel's width on first start.
pub fn side_default_width(window_width: f32) -> f32 {
    (window_width * 0.25).clamp(280.0, 360.0)
}

/// The widest a side panel may be when `available_width` is left for it, the map and the
/// panel still to come (`other_min_width`, 0 when hidden): the map keeps its minimum.
pub fn side_max_width(available_width: f32, other_min_width: f32, own_min_width: f32) -> f32 {
    (available_width - MIN_MAP_WIDTH - other_min_width).max(own_min_width)
}

/// Where the preview pane goes in the centre (what is left between the side panels).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PreviewPlacement {
    /// To the right of the map: default and largest widths.
    Beside { default_width: f32, max_width: f32 },
    /// Above the map: default and largest heights.
    Above {
        default_height: f32,
        max_height: f32,
    },
    /// No room for both: the map keeps the centre.
    Collapsed,
}

/// See [`PreviewPlacement`]. `centre` is the size left between the side panels.
pub fn preview_placement(centre: Vec2) -> PreviewPlacement {
    if centre.x >= MIN_MAP_WIDTH + PREVIEW_MIN_WIDTH && centre.y >= MIN_MAP_HEIGHT {
        let max_width = centre.x - MIN_MAP_WIDTH;
        PreviewPlacement::Beside {
            default_width: (centre.x * 0.42).clamp(PREVIEW_MIN_WIDTH, max_width),
            max_width,
        }
    } else if centre.y >= MIN_MAP_HEIGHT + PREVIEW_MIN_HEIGHT && centre.x >= MIN_MAP_WIDTH {
        let max_height = centre.y - MIN_MAP_HEIGHT;
        PreviewPlacement::Above {
            default_height: (centre.y * 0.4).clamp(PREVIEW_MIN_HEIGHT, max_height),
            max_height,
        }
    } else {
        PreviewPlacement::Collapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The centre left at a window width with both panels at their defaults.
    fn centre_width(window_width: f32) -> f32 {
        window_width - browser_default_width(window_width) - side_default_width(window_width)
    }

    #[test]
    fn the_panels_leave_the_map_room_on_small_screens() {
        for window in [1024.0, 1280.0, 1600.0] {
            assert!(centre_width(window) >= MIN_MAP_WIDTH, "{window}");
        }
        // A side panel dragged wide is capped so the map and the other panel still fit.
        let side = side_max_width(1024.0, BROWSER_MIN_WIDTH, SIDE_MIN_WIDTH);
        assert_eq!(side, 1024.0 - MIN_MAP_WIDTH - BROWSER_MIN_WIDTH);
        // Never below its own minimum, even in a tiny window.
        assert_eq!(side_max_width(500.0, 200.0, 250.0), 250.0);
    }

    #[test]
    fn the_preview_goes_beside_then_above_then_away() {
        match preview_placement(Vec2::new(880.0, 930.0)) {
            PreviewPlacement::Beside {
                default_width,
                max_width,
            } => {
                assert!(880.0 - max_width >= MIN_MAP_WIDTH);
                assert!(default_width <= max_width && default_width >= PREVIEW_MIN_WIDTH);
            }
            other => panic!("{other:?}"),
        }
        // 1024 x 700: the centre is narrow but tall enough.
        let centre = Vec2::new(centre_width(1024.0), 620.0);
        match preview_placement(centre) {
            PreviewPlacement::Above {
                default_height,
                max_height,
            } => {
                assert!(centre.y - max_height >= MIN_MAP_HEIGHT);
                assert!(default_height <= max_height);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            preview_placement(Vec2::new(500.0, 350.0)),
            PreviewPlacement::Collapsed
        );
    }
}
