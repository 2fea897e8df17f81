"""One-line plain-language descriptions of every radiomic feature the pipeline extracts.

Keys are ``(family, feature)`` with PyRadiomics' own names (as in the long feature table). The
wording is for a clinical reader: what a high value of the feature means inside a patch. Texture
families are computed on grey levels binned with ``radiomics.bin_width``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_FIRSTORDER = {
    "10Percentile": "intensity below which the darkest 10% of the patch's voxels lie",
    "90Percentile": "intensity below which 90% of the patch's voxels lie (how bright the brighter tissue is)",
    "Energy": "sum of squared intensities: grows with both brightness and the number of voxels",
    "Entropy": "randomness of the intensity histogram: high when intensities are irregular and heterogeneous",
    "InterquartileRange": "spread of the middle half of the intensities (75th minus 25th percentile)",
    "Kurtosis": "peakedness of the intensity histogram: high when a few voxels are far from the rest",
    "Maximum": "brightest voxel intensity in the patch",
    "Mean": "average intensity of the patch",
    "MeanAbsoluteDeviation": "average distance of the intensities from their mean",
    "Median": "middle intensity of the patch",
    "Minimum": "darkest voxel intensity in the patch",
    "Range": "brightest minus darkest intensity",
    "RobustMeanAbsoluteDeviation": (
        "average distance from the mean of the intensities between the 10th and 90th percentiles"
    ),
    "RootMeanSquared": "square root of the mean squared intensity (overall signal magnitude)",
    "Skewness": "asymmetry of the intensity histogram: positive when a tail of bright voxels stands out",
    "StandardDeviation": "spread of intensities around the mean",
    "TotalEnergy": "energy scaled by voxel volume: overall signal amount of the patch",
    "Uniformity": "how concentrated the intensity histogram is: low for heterogeneous tissue",
    "Variance": "squared spread of intensities around the mean",
}

_SHAPE = {
    "Compactness1": "how close the tissue region is to a sphere (volume relative to surface^1.5)",
    "Compactness2": "how close the tissue region is to a sphere (36 pi volume^2 / surface^3; 1 for a sphere)",
    "Elongation": "ratio of the second-largest to the largest axis of the tissue region (1 = not elongated)",
    "Flatness": "ratio of the smallest to the largest axis of the tissue region (1 = not flat)",
    "LeastAxisLength": "shortest principal-axis length of the tissue region (mm)",
    "MajorAxisLength": "longest principal-axis length of the tissue region (mm)",
    "Maximum2DDiameterColumn": "largest in-plane diameter of the tissue region in row-slice planes (mm)",
    "Maximum2DDiameterRow": "largest in-plane diameter of the tissue region in column-slice planes (mm)",
    "Maximum2DDiameterSlice": "largest in-plane diameter of the tissue region within a slice (mm)",
    "Maximum3DDiameter": "largest distance between two points on the tissue region's surface (mm)",
    "MeshVolume": "volume of the tissue region from its surface mesh (mm^3)",
    "MinorAxisLength": "second-largest principal-axis length of the tissue region (mm)",
    "Sphericity": "how round the tissue region is (1 for a sphere, lower for irregular shapes)",
    "SurfaceArea": "surface area of the tissue region (mm^2)",
    "SurfaceVolumeRatio": "surface area per volume: high for thin, irregular or fragmented tissue",
    "VoxelVolume": "volume of the tissue region counted in voxels (mm^3)",
}

_GLCM = {
    "Autocorrelation": "co-occurrence of bright voxels next to bright voxels (fineness and brightness)",
    "ClusterProminence": (
        "asymmetry of neighbouring grey-level pairs: high when a few pairs differ strongly from the mean"
    ),
    "ClusterShade": "skewness of neighbouring grey-level pairs: sign shows whether bright or dark pairs stand out",
    "ClusterTendency": "how often neighbouring voxels form groups of similar grey level",
    "Contrast": "local intensity variation between neighbouring voxels: high for sharp, fine texture",
    "Correlation": "linear dependence of a voxel's grey level on its neighbour's (smooth gradients score high)",
    "DifferenceAverage": "average grey-level difference between neighbouring voxels",
    "DifferenceEntropy": "randomness of grey-level differences between neighbours",
    "DifferenceVariance": "heterogeneity of grey-level differences between neighbours",
    "Id": "inverse difference (homogeneity): high when neighbours have similar grey levels",
    "Idm": "inverse difference moment: homogeneity weighted towards very similar neighbours",
    "Idmn": "inverse difference moment normalised by the number of grey levels (homogeneity)",
    "Idn": "inverse difference normalised by the number of grey levels (homogeneity)",
    "Imc1": "informational measure of correlation 1: texture complexity from mutual information of neighbours",
    "Imc2": "informational measure of correlation 2: texture complexity (0 = independent, 1 = fully dependent)",
    "InverseVariance": "inverse of squared grey-level differences between neighbours (homogeneity)",
    "JointAverage": "mean grey level over neighbouring voxel pairs",
    "JointEnergy": "repetitiveness of neighbouring grey-level pairs: high for orderly, uniform texture",
    "JointEntropy": "randomness of neighbouring grey-level pairs: high for heterogeneous texture",
    "MCC": "maximal correlation coefficient: overall complexity of the texture",
    "MaximumProbability": "share of the most frequent neighbouring grey-level pair (dominant pattern)",
    "SumAverage": "average of the sums of neighbouring grey levels (brightness of pairs)",
    "SumEntropy": "randomness of the sums of neighbouring grey levels",
    "SumSquares": "spread of neighbouring grey levels around their mean (texture variance)",
}

_GLRLM = {
    "GrayLevelNonUniformity": "how unevenly runs are spread over grey levels (absolute, grows with patch size)",
    "GrayLevelNonUniformityNormalized": "how unevenly runs are spread over grey levels (normalised)",
    "GrayLevelVariance": "variance of grey levels over runs",
    "HighGrayLevelRunEmphasis": "weight of runs of bright voxels",
    "LongRunEmphasis": "weight of long runs of equal grey level: coarse, homogeneous structure",
    "LongRunHighGrayLevelEmphasis": "weight of long runs of bright voxels",
    "LongRunLowGrayLevelEmphasis": "weight of long runs of dark voxels",
    "LowGrayLevelRunEmphasis": "weight of runs of dark voxels",
    "RunEntropy": "randomness of run lengths and grey levels: heterogeneous texture",
    "RunLengthNonUniformity": "how unevenly runs are spread over run lengths (absolute)",
    "RunLengthNonUniformityNormalized": "how unevenly runs are spread over run lengths (normalised)",
    "RunPercentage": "runs per voxel: high for fine texture, low for coarse",
    "RunVariance": "variance of run lengths",
    "ShortRunEmphasis": "weight of short runs: fine texture",
    "ShortRunHighGrayLevelEmphasis": "weight of short runs of bright voxels",
    "ShortRunLowGrayLevelEmphasis": "weight of short runs of dark voxels",
}

_GLSZM = {
    "GrayLevelNonUniformity": "how unevenly zones are spread over grey levels (absolute)",
    "GrayLevelNonUniformityNormalized": "how unevenly zones are spread over grey levels (normalised)",
    "GrayLevelVariance": "variance of grey levels over connected zones",
    "HighGrayLevelZoneEmphasis": "weight of bright connected zones",
    "LargeAreaEmphasis": "weight of large connected zones of equal grey level: coarse structure",
    "LargeAreaHighGrayLevelEmphasis": "weight of large bright zones",
    "LargeAreaLowGrayLevelEmphasis": "weight of large dark zones",
    "LowGrayLevelZoneEmphasis": "weight of dark connected zones",
    "SizeZoneNonUniformity": "how unevenly zones are spread over zone sizes (absolute)",
    "SizeZoneNonUniformityNormalized": "how unevenly zones are spread over zone sizes (normalised)",
    "SmallAreaEmphasis": "weight of small connected zones: fine texture",
    "SmallAreaHighGrayLevelEmphasis": "weight of small bright zones",
    "SmallAreaLowGrayLevelEmphasis": "weight of small dark zones",
    "ZoneEntropy": "randomness of zone sizes and grey levels: heterogeneous texture",
    "ZonePercentage": "zones per voxel: high for fine texture",
    "ZoneVariance": "variance of zone sizes",
}

_GLDM = {
    "DependenceEntropy": "randomness of grey-level dependence: heterogeneous texture",
    "DependenceNonUniformity": "how unevenly voxels are spread over dependence sizes (absolute)",
    "DependenceNonUniformityNormalized": "how unevenly voxels are spread over dependence sizes (normalised)",
    "DependenceVariance": "variance of dependence sizes (how many similar neighbours voxels have)",
    "GrayLevelNonUniformity": "how unevenly voxels are spread over grey levels",
    "GrayLevelVariance": "variance of grey levels",
    "HighGrayLevelEmphasis": "weight of bright voxels",
    "LargeDependenceEmphasis": "weight of voxels with many similar neighbours: homogeneous tissue",
    "LargeDependenceHighGrayLevelEmphasis": "weight of bright voxels with many similar neighbours",
    "LargeDependenceLowGrayLevelEmphasis": "weight of dark voxels with many similar neighbours",
    "LowGrayLevelEmphasis": "weight of dark voxels",
    "SmallDependenceEmphasis": "weight of voxels with few similar neighbours: heterogeneous tissue",
    "SmallDependenceHighGrayLevelEmphasis": "weight of bright voxels with few similar neighbours",
    "SmallDependenceLowGrayLevelEmphasis": "weight of dark voxels with few similar neighbours",
}

_NGTDM = {
    "Busyness": "rapid intensity changes between a voxel and its neighbourhood (busy texture)",
    "Coarseness": "slowness of intensity change: high for large uniform areas",
    "Complexity": "number of distinct, sharp intensity transitions (non-uniform, complex texture)",
    "Contrast": "dynamic range plus local intensity change between voxels and their neighbourhoods",
    "Strength": "clearly visible primitives: large, distinct areas of differing intensity",
}

_LOCATION = {
    "i": "the patch's index along the slice direction (a location feature, not an image measurement)",
    "j": "the patch's index along the row direction (a location feature, not an image measurement)",
    "k": "the patch's index along the column direction (a location feature, not an image measurement)",
}

FEATURE_DESCRIPTIONS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        (family, name): text
        for family, table in (
            ("firstorder", _FIRSTORDER),
            ("shape", _SHAPE),
            ("glcm", _GLCM),
            ("glrlm", _GLRLM),
            ("glszm", _GLSZM),
            ("gldm", _GLDM),
            ("ngtdm", _NGTDM),
            ("location", _LOCATION),
        )
        for name, text in table.items()
    }
)

FAMILY_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "firstorder": "intensity statistics of the patch",
        "shape": "shape of the tissue region inside the patch",
        "glcm": "grey-level co-occurrence texture",
        "glrlm": "grey-level run-length texture",
        "glszm": "grey-level size-zone texture",
        "gldm": "grey-level dependence texture",
        "ngtdm": "neighbouring grey-tone difference texture",
        "location": "patch position",
    }
)

IMAGE_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "original": "the patient's image",
        "persona": "the healthy persona (what this knee would look like without disease)",
        "residual": "patient minus persona (where the knee deviates from its healthy persona)",
    }
)


def describe_feature(family: str, name: str) -> str:
    """The one-line description of ``family``/``name``.

    Raises:
        KeyError: an unknown feature (every feature the pipeline extracts has a description; a test
            compares this table with the radiomics module's feature lists).
    """
    try:
        return FEATURE_DESCRIPTIONS[(family, name)]
    except KeyError:
        raise KeyError(
            f"no description for feature {family}.{name}; add it to radpersona/explain/descriptions.py"
        ) from None
